/**
 * The agent protocol over a message-oriented transport (ZeroMQ): one message is a multipart
 * message of one or two frames, [header JSON] or [header JSON, payload bytes] — the same header
 * and payload that ../protocol/framing.ts length-prefixes on byte streams. The routing identity
 * that a ROUTER socket adds in front is not part of it.
 */
import { requestIdOf, type Incoming } from "../protocol/framing";
import { MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES } from "../protocol/messages";

export function encodeMultipart(header: object, payload?: Uint8Array): Buffer[] {
  const head = Buffer.from(JSON.stringify(header), "utf8");
  return payload && payload.length > 0 ? [head, Buffer.from(payload.buffer, payload.byteOffset, payload.length)] : [head];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Never throws: a malformed message becomes a FrameError, as on byte streams. */
export function decodeMultipart(frames: Buffer[]): Incoming {
  const [head, payload, ...extra] = frames;
  if (head === undefined || extra.length > 0) {
    return { kind: "error", code: "bad_frame", re: null, message: `a message has 1 or 2 frames (header, optional payload), not ${frames.length}` };
  }
  if (head.length > MAX_HEADER_BYTES) {
    return { kind: "error", code: "too_large", re: null, message: `message header of ${head.length} bytes exceeds the limit of ${MAX_HEADER_BYTES} bytes` };
  }
  let header: unknown;
  try {
    header = JSON.parse(utf8.decode(head));
  } catch (error) {
    return { kind: "error", code: "bad_frame", re: null, message: `message header is not UTF-8 JSON (${(error as Error).message}); the message was skipped` };
  }
  if (payload !== undefined && payload.length > MAX_PAYLOAD_BYTES) {
    return {
      kind: "error",
      code: "too_large",
      re: requestIdOf(header),
      message: `message payload of ${payload.length} bytes exceeds the limit of ${MAX_PAYLOAD_BYTES} bytes; the message was skipped`,
    };
  }
  return { kind: "frame", header, payload: payload !== undefined && payload.length > 0 ? payload : undefined };
}
