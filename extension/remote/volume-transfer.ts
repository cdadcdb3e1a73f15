/**
 * The kernel's side of volume transfers (remote-agent/volumes/archive.ts has the stream format,
 * remote-agent/volumes/transfers.ts the agent's side). Both directions keep at most the agent's
 * `window` of chunks in flight, each at most `chunkBytes`, so memory stays constant whatever the
 * size; both hash the whole stream and compare at the end. A download is staged beside its local
 * destination and renamed into place only once verified; a failed or interrupted transfer is
 * aborted on the agent too, which removes its temporary data. Each runs in duringTransfer
 * (remote-agent/gc-tuning.ts): the executor's collector is tuned for it while it runs.
 */
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { ArchiveReader, ArchiveWriter, installStaged, planArchive } from "../../remote-agent/volumes/archive";
import { duringTransfer } from "../../remote-agent/gc-tuning";
import { releasePayload } from "../../remote-agent/protocol/framing";
import { TEMP_PREFIX } from "../../remote-agent/volumes/paths";
import type { AgentClient } from "./agent-client";
import { KeyboardInterrupt } from "./errors";

export interface TransferOptions {
  /** Bytes of the stream moved so far, and the stream's total. */
  onProgress?: (done: number, total: number) => void;
  /** Aborts the transfer (kernel interrupt). */
  signal?: AbortSignal;
}

export interface TransferResult {
  kind: "file" | "dir";
  files: number;
  /** Bytes of file data (what the user calls the size). */
  dataBytes: number;
}

/** Uploads a local file or folder to `remotePath` in volume `volume`. */
export function putPath(client: AgentClient, volume: string, local: string, remotePath: string, options: TransferOptions = {}): Promise<TransferResult> {
  return duringTransfer(() => upload(client, volume, local, remotePath, options));
}

/** Downloads `remotePath` (a file or folder) of volume `volume` to the local path `local`. */
export function getPath(client: AgentClient, volume: string, remotePath: string, local: string, options: TransferOptions = {}): Promise<TransferResult> {
  return duringTransfer(() => download(client, volume, remotePath, local, options));
}

async function upload(client: AgentClient, volume: string, local: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
  const plan = await planArchive(path.resolve(local));
  checkNotAborted(options.signal, "before the upload started; nothing was sent");
  const start = await client.request({ type: "volume_put", name: volume, path: remotePath, kind: plan.kind, streamBytes: plan.streamBytes });
  const reader = new ArchiveReader(plan, start.chunkBytes, start.window);
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  try {
    for (let seq = 0; ; seq++) {
      checkNotAborted(options.signal, "the upload was interrupted; nothing was written to the volume");
      while (inFlight.size >= start.window && failure === undefined) await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
      const chunk = await reader.read();
      if (!chunk) break;
      const acked: Promise<void> = client
        .requestWithPayload({ type: "transfer_chunk", transferId: start.transferId, seq }, chunk)
        .then(
          () => {
            sent += chunk.length;
            options.onProgress?.(sent, plan.streamBytes);
          },
          (error) => {
            failure ??= error;
          },
        )
        .finally(() => inFlight.delete(acked));
      inFlight.add(acked);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    checkNotAborted(options.signal, "the upload was interrupted; nothing was written to the volume");
    await client.request({ type: "transfer_end", transferId: start.transferId, sha256: reader.digest() });
  } catch (error) {
    await Promise.allSettled(inFlight);
    // transfer_end removes its own temporary data when it fails; anything else is aborted here.
    await client.request({ type: "transfer_abort", transferId: start.transferId }).catch(() => undefined);
    throw error;
  } finally {
    await reader.close();
  }
  return { kind: plan.kind, files: plan.files, dataBytes: plan.dataBytes };
}

async function download(client: AgentClient, volume: string, remotePath: string, local: string, options: TransferOptions): Promise<TransferResult> {
  checkNotAborted(options.signal, "before the download started; nothing was written");
  const start = await client.request({ type: "volume_get", name: volume, path: remotePath });
  const destination = path.resolve(local);
  const staging = path.join(path.dirname(destination), `${TEMP_PREFIX}${randomBytes(6).toString("hex")}`);
  const writer = new ArchiveWriter(staging, start.kind);
  // The stream is ceil(streamBytes / chunkBytes) chunks, then one read that says eof with the hash.
  const reads = Math.ceil(start.streamBytes / start.chunkBytes) + 1;
  const pending: Array<Promise<{ body: { eof: boolean; sha256?: string }; payload?: Buffer }>> = [];
  let requested = 0;
  const requestNext = () => {
    const read = client.requestWithPayload({ type: "transfer_read", transferId: start.transferId, seq: requested++ });
    read.catch(() => undefined); // awaited in order below
    pending.push(read);
  };
  let received = 0;
  try {
    while (requested < Math.min(reads, start.window)) requestNext();
    for (;;) {
      checkNotAborted(options.signal, "the download was interrupted; nothing was written");
      const { body, payload } = await pending.shift()!;
      if (body.eof) {
        await writer.finish(body.sha256 ?? "");
        break;
      }
      if (requested < reads) requestNext();
      if (payload) {
        await writer.write(payload);
        received += payload.length;
        releasePayload(payload); // the writer keeps no reference to it
        options.onProgress?.(received, start.streamBytes);
      }
    }
    await installStaged(staging, destination);
  } catch (error) {
    await Promise.allSettled(pending);
    await writer.abort();
    await client.request({ type: "transfer_abort", transferId: start.transferId }).catch(() => undefined);
    throw error;
  }
  return { kind: start.kind, files: start.files, dataBytes: start.dataBytes };
}

function checkNotAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new KeyboardInterrupt(what);
}
