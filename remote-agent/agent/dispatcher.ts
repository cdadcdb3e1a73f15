/**
 * The one place requests are checked and answered (ipykernel's handler table): a frame error, a
 * header that is not a request of this protocol version, an unknown type or a schema violation
 * gets an `error` reply; a valid request goes to its handler, whose result becomes the `reply`
 * and whose exceptions become `error` replies (an AgentError's code, else `internal`). Nothing a
 * client sends can throw out of here.
 */
import { z } from "zod";
import { requestIdOf, type Incoming } from "../protocol/framing";
import { PROTOCOL_VERSION, Request, type ReplyBody, type RequestType } from "../protocol/messages";
import type { Connection } from "./connection";
import { AgentError } from "./errors";
import type { Log } from "./log";

export interface HandlerContext {
  connection: Connection;
  /** Runs after the reply has been sent (e.g. start streaming a job's events). */
  afterReply(action: () => void): void;
  /** The request's binary payload, if it had one (e.g. a volume transfer's chunk). */
  payload?: Buffer;
  /** Sends `payload` with the reply (e.g. a chunk of a volume download). */
  attachPayload(payload: Uint8Array): void;
}

export type Handler<T extends RequestType> = (
  request: Extract<Request, { type: T }>,
  context: HandlerContext,
) => Promise<Extract<ReplyBody, { of: T }>> | Extract<ReplyBody, { of: T }>;

export type HandlerTable = { [T in RequestType]: Handler<T> };

export async function dispatch(incoming: Incoming, connection: Connection, handlers: HandlerTable, log: Log): Promise<void> {
  if (incoming.kind === "error") return connection.error(incoming.re, incoming.code, incoming.message);
  const header = incoming.header;
  const re = requestIdOf(header);
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    return connection.error(re, "bad_frame", "a request header must be a JSON object with v, id and type");
  }
  const { v, type } = header as { v?: unknown; type?: unknown };
  if (v !== undefined && v !== PROTOCOL_VERSION) {
    return connection.error(re, "unsupported_version", `protocol version ${JSON.stringify(v)} is not supported; this agent speaks version ${PROTOCOL_VERSION}`);
  }
  if (typeof type !== "string" || !Object.hasOwn(handlers, type)) {
    return connection.error(
      re,
      "unknown_type",
      `unknown request type ${JSON.stringify(type)}; accepted: ${Object.keys(handlers).join(", ")}`,
    );
  }
  const parsed = Request.safeParse(header);
  if (!parsed.success) {
    return connection.error(re, "bad_frame", `invalid '${type}' request: ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}`);
  }
  const request = parsed.data;
  const after: Array<() => void> = [];
  let replyPayload: Uint8Array | undefined;
  try {
    const handler = handlers[request.type] as (r: Request, c: HandlerContext) => Promise<ReplyBody> | ReplyBody;
    const body = await handler(request, {
      connection,
      afterReply: (action) => after.push(action),
      payload: incoming.payload,
      attachPayload: (payload) => (replyPayload = payload),
    });
    connection.reply(request.id, body, replyPayload);
  } catch (e) {
    if (e instanceof AgentError) return connection.error(request.id, e.code, e.message);
    log(`internal error handling '${request.type}' (${request.id}): ${(e as Error)?.stack ?? String(e)}`);
    return connection.error(request.id, "internal", `the agent failed handling '${request.type}': ${(e as Error)?.message ?? String(e)}`);
  }
  for (const action of after) {
    try {
      action();
    } catch (e) {
      log(`internal error after replying to '${request.type}' (${request.id}): ${(e as Error)?.stack ?? String(e)}`);
    }
  }
}
