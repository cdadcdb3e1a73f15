/**
 * Frames of the agent protocol over a byte stream (stdin/stdout of `farlab-agent serve --stdio`,
 * an SSH channel, a Unix socket):
 *
 *     [u32 BE header length][u32 BE payload length][header: JSON, UTF-8][payload bytes]
 *
 * A message-oriented transport (ZeroMQ) carries the same header and payload as two multipart
 * frames instead; everything above the `Transport` interface is the same for both.
 *
 * Malformed input never throws out of the decoder: it yields a `FrameError` (the agent answers it
 * with an `error` reply) and carries on. How it carries on depends on whether the length prefix
 * can still be trusted:
 *
 * - The lengths are plausible (header <= MAX_HEADER_BYTES) but the header is not UTF-8 / JSON, or
 *   the payload is over MAX_PAYLOAD_BYTES: the frame boundaries are intact, so the decoder skips
 *   exactly the announced bytes (an oversized payload is discarded as it streams past, never
 *   buffered) and the next frame decodes normally. For an oversized payload the header is still
 *   read, so the error reply names the request (`re`).
 * - The header length is over MAX_HEADER_BYTES: no honest peer sends that, so the stream is out of
 *   step (garbage bytes, a peer speaking something else). Skipping "the announced bytes" would
 *   swallow up to 4 GiB of later, valid frames, so the decoder reports one error and then
 *   resynchronises: it drops bytes until the next position that looks like a frame start
 *   (plausible lengths and a header that begins with `{`), and resumes once such a frame
 *   decodes. While resynchronising it reports nothing more, so one burst of garbage costs one
 *   error reply.
 */
import type { Readable, Writable } from "node:stream";
import { MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES, type ErrorCode } from "./messages";

export const PREFIX_BYTES = 8;
/** Frames at least this long are assembled in place as they arrive (FrameDecoder.assembly). */
const ASSEMBLE_BYTES = 64 * 1024;

/**
 * Buffers for large frames (a volume transfer's 1 MiB chunks), reused instead of allocated per
 * frame. A receiver that is done with a payload hands it back with `releasePayload`; one that
 * never does just leaves it to the garbage collector, as any other buffer.
 *
 * Why: buffers are memory outside V8's heap that V8 only frees when it collects their small JS
 * objects, and a transfer allocates few JS objects per MiB, so it is the buffers that drive the
 * collector. With a fresh 1 MiB buffer per chunk (each alive for several chunks' time), a 256 MiB
 * download ran 24-36 full (mark-compact) collections; with the pool and StreamTransport's direct
 * reading, 2-13. About 20 of them cost a quarter of the kernel side's CPU (perf), and a real
 * kernel's heap (the TypeScript compiler) makes each one dearer still (docs/volumes.md).
 */
const POOL_BUFFER_BYTES = 1024 * 1024 + 64 * 1024; // a 1 MiB chunk, its prefix and its header
const POOL_MAX_FREE = 12;
const POOL_IDLE_MS = 2_000;
const poolFree: Buffer[] = [];
/** The whole pool buffer behind each ArrayBuffer the pool made (to recognise a payload as ours). */
const poolOwned = new WeakMap<ArrayBufferLike, Buffer>();
/** Drops the free buffers once no transfer used them for a while: an idle kernel keeps nothing. */
const poolTrim = setTimeout(() => poolFree.splice(0), POOL_IDLE_MS);
poolTrim.unref();

/** A buffer of `bytes` (64 KiB..POOL_BUFFER_BYTES) for a frame, from the pool when one is free. */
function frameBuffer(bytes: number): Buffer {
  if (bytes < POOL_BUFFER_BYTES / 2 || bytes > POOL_BUFFER_BYTES) return Buffer.allocUnsafe(bytes);
  let whole = poolFree.pop();
  if (!whole) {
    whole = Buffer.allocUnsafeSlow(POOL_BUFFER_BYTES);
    poolOwned.set(whole.buffer, whole);
  }
  poolTrim.refresh();
  return whole.subarray(0, bytes);
}

/**
 * Returns a frame's payload to the decoders' buffer pool. Only for a receiver that holds no
 * reference to `payload` (or any view of it) any more: the next large frame is written into it.
 * Payloads the pool did not make (small frames, ZeroMQ messages) are ignored.
 */
export function releasePayload(payload: Buffer | undefined): void {
  if (!payload) return;
  const whole = poolOwned.get(payload.buffer);
  if (!whole || poolFree.length >= POOL_MAX_FREE || poolFree.includes(whole)) return;
  poolFree.push(whole);
  poolTrim.refresh();
}

/** A well-formed frame: the header is parsed JSON (not yet validated against a schema). */
export interface Frame {
  kind: "frame";
  header: unknown;
  payload?: Buffer;
}

/** A frame that could not be decoded; `re` is the request id when it could still be read. */
export interface FrameError {
  kind: "error";
  code: Extract<ErrorCode, "bad_frame" | "too_large">;
  message: string;
  re: string | null;
}

export type Incoming = Frame | FrameError;

/**
 * The seam between the agent core (or the client) and how bytes travel. The agent core only
 * sees this; stdio, SSH channels and ZeroMQ sockets each implement it.
 */
export interface Transport {
  /** Sends one message; resolves when the transport has accepted it (back-pressure), rejects
   * when the connection is gone. */
  send(header: object, payload?: Uint8Array): Promise<void>;
  /** What arrives: frames and frame errors, in order; ends when the connection closes. */
  readonly frames: AsyncIterable<Incoming>;
  /** Stops sending and receiving; the `frames` iterator ends. */
  close(): void;
  /**
   * Present on transports whose peers authenticate by key (ZeroMQ/CURVE): whether a client may
   * act as the user it claims in `hello` (remote-agent/keys/user-proof.ts). Absent: the claim
   * is taken as it is (stdio and SSH serve the login account's own client).
   */
  checkUser?(user: string, proof: string | undefined): boolean;
}

export function encodeFrame(header: object, payload?: Uint8Array): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.writeUInt32BE(headerBytes.length, 0);
  prefix.writeUInt32BE(payload?.length ?? 0, 4);
  return payload && payload.length > 0
    ? Buffer.concat([prefix, headerBytes, payload])
    : Buffer.concat([prefix, headerBytes]);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses a header's bytes; returns the value or a reason it is not a JSON header. */
function parseHeader(bytes: Buffer): { ok: true; value: unknown } | { ok: false; reason: string } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, reason: "frame header is not valid UTF-8" };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, reason: `frame header is not valid JSON (${(e as Error).message})` };
  }
}

/** The request id of a parsed header, if it has one, for error replies. */
export function requestIdOf(header: unknown): string | null {
  if (header && typeof header === "object" && "id" in header) {
    const id = (header as { id: unknown }).id;
    if (typeof id === "string") return id;
  }
  return null;
}

/**
 * Streaming decoder: push chunks as they arrive (any split, many frames per chunk), get back the
 * frames and frame errors completed so far.
 */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  /** Bytes of an oversized payload still to discard. */
  private discarding = 0;
  /** Out of step after an absurd header length: searching for the next frame start. */
  private resyncing = false;
  /**
   * Chunks that arrived while a frame was still incomplete, joined only once `needed` bytes are
   * there: a 1 MiB payload arriving in 32 KiB pieces is copied once, not 32 times over.
   */
  private parked: Buffer[] = [];
  private parkedBytes = 0;
  private needed = 0;
  /**
   * A large frame being assembled: its buffer is allocated once its length is known, and each
   * piece is copied in as it arrives, so the pieces die young (a scavenge frees them) instead of
   * being parked until the frame is complete, surviving into the old generation and piling up
   * as garbage only a full collection frees (tens of MiB of RSS during a transfer).
   */
  private assembly?: { frame: Buffer; filled: number };

  constructor(
    private readonly maxHeader = MAX_HEADER_BYTES,
    private readonly maxPayload = MAX_PAYLOAD_BYTES,
  ) {}

  push(chunk: Buffer): Incoming[] {
    if (this.assembly) {
      const assembly = this.assembly;
      const n = Math.min(chunk.length, assembly.frame.length - assembly.filled);
      chunk.copy(assembly.frame, assembly.filled, 0, n);
      assembly.filled += n;
      if (assembly.filled < assembly.frame.length) return [];
      this.assembly = undefined;
      // The buffer was emptied when the assembly began: the frame is all of it now.
      this.buffer = assembly.frame;
      const out = this.push(Buffer.alloc(0));
      return n < chunk.length ? [...out, ...this.push(chunk.subarray(n))] : out;
    }
    if (this.buffer.length + this.parkedBytes + chunk.length < this.needed) {
      this.parked.push(chunk);
      this.parkedBytes += chunk.length;
      return [];
    }
    const parts = [this.buffer, ...this.parked, chunk].filter((part) => part.length > 0);
    this.buffer = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this.parked = [];
    this.parkedBytes = 0;
    this.needed = 0;
    const out: Incoming[] = [];
    for (;;) {
      if (this.discarding > 0) {
        const n = Math.min(this.discarding, this.buffer.length);
        this.discarding -= n;
        this.buffer = this.buffer.subarray(n);
        if (this.discarding > 0) break;
      }
      if (this.resyncing && !this.seekFrameStart()) break;
      if (this.buffer.length < PREFIX_BYTES) {
        this.needed = PREFIX_BYTES;
        break;
      }
      const headerLength = this.buffer.readUInt32BE(0);
      const payloadLength = this.buffer.readUInt32BE(4);

      if (headerLength > this.maxHeader) {
        // Cannot be an honest frame (see the file comment): report once, then resynchronise.
        if (!this.resyncing) {
          out.push({
            kind: "error",
            code: "too_large",
            re: null,
            message:
              `frame header length ${headerLength} bytes exceeds the limit of ${this.maxHeader} bytes ` +
              `(is the peer speaking the farlab agent protocol?); skipping to the next frame`,
          });
          this.resyncing = true;
        }
        this.buffer = this.buffer.subarray(1);
        continue;
      }

      if (this.buffer.length < PREFIX_BYTES + headerLength) {
        this.needed = PREFIX_BYTES + headerLength;
        break;
      }
      const header = parseHeader(this.buffer.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength));

      if (this.resyncing) {
        // A candidate found while resynchronising counts only if it decodes and its payload fits;
        // otherwise it was more garbage: move one byte on, silently.
        if (!header.ok || payloadLength > this.maxPayload) {
          this.buffer = this.buffer.subarray(1);
          continue;
        }
        this.resyncing = false;
      }

      if (payloadLength > this.maxPayload) {
        out.push({
          kind: "error",
          code: "too_large",
          re: header.ok ? requestIdOf(header.value) : null,
          message: `frame payload of ${payloadLength} bytes exceeds the limit of ${this.maxPayload} bytes; the frame was skipped`,
        });
        this.buffer = this.buffer.subarray(PREFIX_BYTES + headerLength);
        this.discarding = payloadLength;
        continue;
      }

      const frameLength = PREFIX_BYTES + headerLength + payloadLength;
      if (this.buffer.length < frameLength) {
        if (frameLength >= ASSEMBLE_BYTES) {
          const frame = frameBuffer(frameLength);
          this.buffer.copy(frame, 0);
          this.assembly = { frame, filled: this.buffer.length };
          this.buffer = Buffer.alloc(0);
        } else {
          this.needed = frameLength;
        }
        break;
      }
      // A view when the payload is most of the buffer (a large payload: the buffer is the frame
      // plus, often, the start of the next one), else a copy, so a small payload never keeps a
      // large buffer alive. Copying a 1 MiB payload again would double the allocations and the
      // garbage of a transfer.
      const payloadView = this.buffer.subarray(PREFIX_BYTES + headerLength, frameLength);
      const payload = payloadLength === 0 ? undefined : 2 * payloadLength >= this.buffer.length ? payloadView : Buffer.from(payloadView);
      this.buffer = this.buffer.subarray(frameLength);
      out.push(
        header.ok
          ? { kind: "frame", header: header.value, payload }
          : { kind: "error", code: "bad_frame", re: null, message: `${header.reason}; the frame was skipped` },
      );
    }
    // Do not keep a large, mostly consumed chunk alive through a small view of it.
    if (this.buffer.length > 0 && this.buffer.byteOffset > 0 && this.buffer.length < 64 * 1024) {
      this.buffer = Buffer.from(this.buffer);
    }
    return out;
  }

  /**
   * Drops bytes until the buffer starts with something shaped like a frame prefix followed by
   * `{`. Returns false when more bytes are needed to decide.
   */
  private seekFrameStart(): boolean {
    while (this.buffer.length >= PREFIX_BYTES + 1) {
      const headerLength = this.buffer.readUInt32BE(0);
      const payloadLength = this.buffer.readUInt32BE(4);
      const plausible =
        headerLength >= 2 &&
        headerLength <= this.maxHeader &&
        payloadLength <= this.maxPayload &&
        this.buffer[PREFIX_BYTES] === 0x7b; /* '{' */
      if (plausible) return true;
      this.buffer = this.buffer.subarray(1);
    }
    return false;
  }
}

/**
 * A Transport over a pair of byte streams (stdin/stdout, an SSH channel, a socket). `frames` is
 * an async iterator over the readable; it ends when the readable ends or breaks.
 */
export class StreamTransport implements Transport {
  private closed = false;
  /** One wait for 'drain' shared by every sender held back (not one listener per send). */
  private drained?: Promise<void>;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {
    // A peer that goes away makes writes fail with EPIPE; that is a closed connection, not a crash.
    output.on("error", () => {
      this.closed = true;
    });
    // Likewise a broken input (ECONNRESET), also after the reader stopped listening.
    input.on("error", () => undefined);
  }

  async send(header: object, payload?: Uint8Array): Promise<void> {
    if (this.closed || this.output.destroyed || this.output.writableEnded) {
      throw new Error("the connection is closed");
    }
    // A payload is written as its own buffer: no copy of a 1 MiB chunk into the frame.
    const head = encodeFrame(header);
    head.writeUInt32BE(payload?.length ?? 0, 4);
    let ok = this.output.write(head);
    if (payload && payload.length > 0) ok = this.output.write(payload);
    if (!ok) {
      this.drained ??= new Promise<void>((resolve) => {
        const done = () => {
          this.output.off("drain", done);
          this.output.off("close", done);
          this.drained = undefined;
          resolve();
        };
        this.output.on("drain", done);
        this.output.on("close", done);
      });
      await this.drained;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.destroy();
    this.output.end();
  }

  readonly frames: AsyncIterable<Incoming> = { [Symbol.asyncIterator]: () => this.read() };

  /**
   * Decodes each chunk as it arrives ('data') and queues the frames; the input is paused while
   * the queue is over its limits and resumed once the reader caught up (back-pressure, as a
   * paused stream stops the peer: a full pipe, or no SSH window adjust). Not `for await` over
   * the input: that costs a promise per 32-64 KiB chunk and joins the chunks buffered meanwhile
   * into a new buffer (a copy of up to 2 MiB), garbage that kept V8's full collector busy during
   * transfers (docs/volumes.md).
   */
  private async *read(): AsyncGenerator<Incoming> {
    const input = this.input;
    const decoder = new FrameDecoder();
    const queue: Incoming[] = [];
    let queuedBytes = 0;
    let ended = false;
    let wake: (() => void) | undefined;
    const sizeOf = (item: Incoming) => (item.kind === "frame" ? (item.payload?.length ?? 0) + 256 : 256);
    const onData = (chunk: Buffer | string) => {
      for (const item of decoder.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk)) {
        queue.push(item);
        queuedBytes += sizeOf(item);
      }
      if (queue.length > QUEUE_MAX_FRAMES || queuedBytes > QUEUE_MAX_BYTES) input.pause();
      wake?.();
    };
    // A destroyed or broken input (ECONNRESET, EPIPE) just ends the connection.
    const onEnd = () => {
      ended = true;
      wake?.();
    };
    input.on("data", onData);
    input.on("end", onEnd);
    input.on("close", onEnd);
    input.on("error", onEnd);
    if (input.readableEnded || input.destroyed) ended = true;
    try {
      for (;;) {
        let next: Incoming | undefined;
        while ((next = queue.shift())) {
          queuedBytes -= sizeOf(next);
          if (input.isPaused() && queue.length <= QUEUE_MAX_FRAMES / 2 && queuedBytes <= QUEUE_MAX_BYTES / 2) input.resume();
          yield next;
        }
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      // A reader that stopped early ends the connection, as leaving `for await` over it would.
      if (!ended) input.destroy();
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("close", onEnd);
      input.off("error", onEnd);
    }
  }
}

/** How much a StreamTransport decodes ahead of its reader before it pauses the input. */
const QUEUE_MAX_FRAMES = 256;
const QUEUE_MAX_BYTES = 4 * 1024 * 1024;
