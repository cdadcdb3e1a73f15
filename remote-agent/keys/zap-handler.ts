/**
 * A ZAP handler (ZeroMQ RFC 27): libzmq asks it, over inproc://zeromq.zap.01 in the same
 * context, whether to accept each connecting peer. Every socket of that context with a security
 * mechanism is subject to it, which is why the agent's listener owns the context it runs in.
 *
 * Request frames:  version "1.0", request id, domain, address, identity, mechanism, credentials...
 * Reply frames:    version "1.0", request id, status code, status text, user id, metadata
 * Status codes: 200 accepted, 400 refused (the peer sees an authentication failure), 500 error.
 */
import { Reply, type Context } from "zeromq";
import { z85Encode } from "./z85";

export const ZAP_ENDPOINT = "inproc://zeromq.zap.01";

export type ZapDecision = { ok: true; userId: string } | { ok: false; reason: string };

/** Decides on a CURVE client key (Z85) connecting from `address`. */
export type CurveAuthorizer = (clientKey: string, address: string) => ZapDecision;

export interface ZapHandler {
  close(): void;
}

export async function startZapHandler(context: Context, authorize: CurveAuthorizer): Promise<ZapHandler> {
  const socket = new Reply({ context, linger: 0 });
  await socket.bind(ZAP_ENDPOINT);
  void (async () => {
    try {
      for await (const request of socket) await socket.send(answer(request, authorize));
    } catch {
      // the socket was closed: the listener is shutting down
    }
  })();
  return { close: () => socket.close() };
}

function answer(frames: Buffer[], authorize: CurveAuthorizer): Array<Buffer | string> {
  const [version, requestId, , address, , mechanism, ...credentials] = frames;
  const reply = (status: string, text: string, userId = "") => ["1.0", requestId ?? "", status, text, userId, ""];
  if (version?.toString() !== "1.0") return reply("500", "unsupported ZAP version");
  // Only CURVE is allowed: a NULL or PLAIN peer cannot even reach here on a CURVE server socket,
  // but refusing anything else keeps the rule in one place.
  if (mechanism?.toString() !== "CURVE" || credentials.length !== 1 || credentials[0].length !== 32) {
    return reply("400", "only CURVE clients with a 32-byte key are accepted");
  }
  const decision = authorize(z85Encode(credentials[0]), address?.toString() ?? "");
  return decision.ok ? reply("200", "OK", decision.userId) : reply("400", decision.reason);
}
