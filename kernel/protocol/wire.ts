/**
 * The Jupyter wire format (messaging protocol 5.3), shared by the kernel server and the client:
 *
 *   [routing ids..., "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers...]
 *
 * The signature is an HMAC over the four JSON frames exactly as they travel, so incoming messages
 * are verified on the raw bytes before anything is parsed.
 */
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { z } from "zod";

export const PROTOCOL_VERSION = "5.3";
const DELIMITER = Buffer.from("<IDS|MSG>");

export interface MessageHeader {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
}

export interface JupyterMessage<Content = Record<string, unknown>> {
  header: MessageHeader;
  /** Empty object for messages without a parent. */
  parent_header: MessageHeader | Record<string, never>;
  metadata: Record<string, unknown>;
  content: Content;
  buffers: Buffer[];
}

/** A decoded message and the routing ids it came with (a ROUTER reply must go back to them). */
export interface Envelope {
  identities: Buffer[];
  message: JupyterMessage;
}

const headerSchema = z.looseObject({
  msg_id: z.string(),
  session: z.string(),
  username: z.string(),
  date: z.string(),
  msg_type: z.string(),
  version: z.string(),
});

export class MessageFormatError extends Error {
  override name = "MessageFormatError";
}

/** Signs and verifies messages. An empty key means "no signing" (signature frame is empty). */
export class MessageSigner {
  private readonly key: Buffer;

  constructor(key: string, scheme = "hmac-sha256") {
    if (key !== "" && scheme !== "hmac-sha256") {
      throw new MessageFormatError(`unsupported signature_scheme '${scheme}'; farlab supports 'hmac-sha256'`);
    }
    this.key = Buffer.from(key, "utf8");
  }

  sign(parts: Buffer[]): string {
    if (this.key.length === 0) return "";
    const hmac = createHmac("sha256", this.key);
    for (const part of parts) hmac.update(part);
    return hmac.digest("hex");
  }

  verify(signature: Buffer, parts: Buffer[]): boolean {
    if (this.key.length === 0) return true;
    const expected = Buffer.from(this.sign(parts), "utf8");
    return signature.length === expected.length && timingSafeEqual(signature, expected);
  }
}

/** Who we are on the wire: a session id and user name stamped into every header we write. */
export class WireSession {
  readonly session = randomUUID();

  constructor(
    readonly signer: MessageSigner,
    readonly username = "farlab",
  ) {}

  createMessage<C extends object>(
    msgType: string,
    content: C,
    parent?: JupyterMessage | MessageHeader | Record<string, never>,
    metadata: Record<string, unknown> = {},
  ): JupyterMessage {
    const parentHeader = parent && "header" in parent ? parent.header : (parent ?? {});
    return {
      header: {
        msg_id: randomUUID(),
        session: this.session,
        username: this.username,
        date: new Date().toISOString(),
        msg_type: msgType,
        version: PROTOCOL_VERSION,
      },
      parent_header: parentHeader as MessageHeader,
      metadata,
      content: content as Record<string, unknown>,
      buffers: [],
    };
  }

  encode(message: JupyterMessage, identities: Buffer[] = []): Buffer[] {
    const parts = [
      Buffer.from(JSON.stringify(message.header)),
      Buffer.from(JSON.stringify(message.parent_header ?? {})),
      Buffer.from(JSON.stringify(message.metadata ?? {})),
      Buffer.from(JSON.stringify(message.content ?? {})),
    ];
    return [...identities, DELIMITER, Buffer.from(this.signer.sign(parts)), ...parts, ...(message.buffers ?? [])];
  }

  /** Throws MessageFormatError for malformed frames or a bad signature. */
  decode(frames: Buffer[]): Envelope {
    const at = frames.findIndex((frame) => frame.equals(DELIMITER));
    if (at < 0) throw new MessageFormatError("no <IDS|MSG> delimiter");
    if (frames.length < at + 6) throw new MessageFormatError(`expected 5 frames after the delimiter, got ${frames.length - at - 1}`);
    const signature = frames[at + 1];
    const parts = frames.slice(at + 2, at + 6);
    if (!this.signer.verify(signature, parts)) throw new MessageFormatError("invalid HMAC signature");
    const [header, parentHeader, metadata, content] = parts.map((part, i) => {
      try {
        return JSON.parse(part.toString("utf8")) as unknown;
      } catch {
        throw new MessageFormatError(`frame ${["header", "parent_header", "metadata", "content"][i]} is not JSON`);
      }
    });
    const parsedHeader = headerSchema.safeParse(header);
    if (!parsedHeader.success) throw new MessageFormatError(`bad header: ${parsedHeader.error.message}`);
    const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
    if (!isObject(content)) throw new MessageFormatError("content is not an object");
    return {
      identities: frames.slice(0, at),
      message: {
        header: parsedHeader.data as MessageHeader,
        parent_header: (isObject(parentHeader) ? parentHeader : {}) as unknown as MessageHeader,
        metadata: isObject(metadata) ? metadata : {},
        content,
        buffers: frames.slice(at + 6),
      },
    };
  }
}
