/**
 * The agent's side of volume transfers. An upload (`volume_put`) is fed chunk by chunk
 * (`transfer_chunk`, each acknowledged by its reply, so the client keeps at most WINDOW chunks in
 * flight) into an ArchiveWriter that stages everything in a temporary path beside the destination;
 * `transfer_end` compares the sha256, fsyncs and renames. A download (`volume_get`) is read chunk
 * by chunk on request (`transfer_read`, the chunk as the reply's payload). Memory per transfer is
 * a few chunks, whatever the size.
 *
 * A transfer belongs to the connection that started it: when that connection ends, or nothing
 * happens for IDLE_MS, it is aborted and its temporary files removed.
 */
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { notFound, usageError } from "../agent/errors";
import type { Log } from "../agent/log";
import { releasePayload } from "../protocol/framing";
import { ArchiveReader, ArchiveWriter, CHUNK_BYTES, installStaged, planArchive } from "./archive";
import { pathSegments, tempName } from "./paths";
import type { VolumeStore } from "./store";

/** Chunks a sender may have unacknowledged. */
export const WINDOW = 8;
const IDLE_MS = 10 * 60_000;

interface Base {
  id: string;
  owner: object;
  volume: string;
  /** Serialises the chunk handlers of this transfer (requests are dispatched concurrently). */
  chain: Promise<unknown>;
  nextSeq: number;
  idle?: NodeJS.Timeout;
}
interface Upload extends Base {
  direction: "put";
  writer: ArchiveWriter;
  destination: string;
  received: number;
  streamBytes: number;
}
interface Download extends Base {
  direction: "get";
  reader: ArchiveReader;
}
type Transfer = Upload | Download;

export class TransferManager {
  private readonly transfers = new Map<string, Transfer>();

  constructor(
    private readonly volumes: VolumeStore,
    private readonly log: Log,
  ) {}

  async beginPut(owner: object, name: string, relative: string, kind: "file" | "dir", streamBytes: number) {
    const segments = pathSegments(relative);
    if (segments.length === 0 && kind === "file") throw usageError(`a file needs a path inside volume '${name}' to be put at`);
    const { absolute: destination } = this.volumes.resolve(name, relative);
    const existing = await fsp.lstat(destination).catch(() => undefined);
    if (existing && existing.isDirectory() !== (kind === "dir")) {
      throw usageError(
        `'${segments.join("/") || "/"}' exists in volume '${name}' as a ${existing.isDirectory() ? "folder" : "file"}; ` +
          (existing.isDirectory() ? `put the file inside it with a trailing slash ('${segments.join("/")}/')` : "remove it first or choose another path"),
      );
    }
    // The parent folders are made inside the volume (the path was checked; the missing part has no links).
    const parent = segments.length === 0 ? destination : path.dirname(destination);
    await fsp.mkdir(parent, { recursive: true });
    const id = newTransferId();
    const staging = path.join(parent, tempName(id));
    const upload: Upload = {
      direction: "put",
      id,
      owner,
      volume: name,
      chain: Promise.resolve(),
      nextSeq: 0,
      writer: new ArchiveWriter(staging, kind),
      destination,
      received: 0,
      streamBytes,
    };
    this.add(upload);
    return { transferId: id, chunkBytes: CHUNK_BYTES, window: WINDOW };
  }

  async beginGet(owner: object, name: string, relative: string) {
    const { volumeRoot, absolute } = this.volumes.resolve(name, relative);
    const exists = await fsp.stat(absolute).catch(() => undefined);
    if (!exists) throw notFound(`'${pathSegments(relative).join("/")}' does not exist in volume '${name}'`);
    const plan = await planArchive(absolute, volumeRoot);
    const id = newTransferId();
    this.add({ direction: "get", id, owner, volume: name, chain: Promise.resolve(), nextSeq: 0, reader: new ArchiveReader(plan, CHUNK_BYTES, WINDOW) });
    return {
      transferId: id,
      kind: plan.kind,
      files: plan.files,
      dataBytes: plan.dataBytes,
      streamBytes: plan.streamBytes,
      chunkBytes: CHUNK_BYTES,
      window: WINDOW,
    };
  }

  chunk(id: string, seq: number, payload: Buffer | undefined): Promise<{ seq: number }> {
    const upload = this.find(id, "put") as Upload;
    return this.inOrder(upload, seq, async () => {
      if (!payload || payload.length === 0) throw usageError("transfer_chunk carries its data as the payload; this one had none");
      upload.received += payload.length;
      if (upload.received > upload.streamBytes) throw usageError(`the upload sent more than the ${upload.streamBytes} bytes it announced`);
      await upload.writer.write(payload);
      releasePayload(payload); // the writer keeps no reference to it
      return { seq };
    });
  }

  read(id: string, seq: number): Promise<{ seq: number; eof: boolean; sha256?: string; payload?: Buffer }> {
    const download = this.find(id, "get") as Download;
    return this.inOrder(download, seq, async () => {
      const payload = await download.reader.read();
      if (payload) return { seq, eof: false, payload };
      const sha256 = download.reader.digest();
      this.forget(download);
      await download.reader.close();
      return { seq, eof: true, sha256 };
    });
  }

  /** Checks and installs an upload; on any failure its temporary data is removed. */
  async end(id: string, sha256: string): Promise<{ files: number; bytes: number }> {
    const upload = this.find(id, "put") as Upload;
    this.forget(upload);
    try {
      await upload.chain;
      await upload.writer.finish(sha256);
      await installStaged(upload.writer.staging, upload.destination);
    } catch (error) {
      await upload.writer.abort();
      throw usageError(`upload to volume '${upload.volume}' failed: ${(error as Error).message}`);
    }
    this.log(`volume ${upload.volume}: upload ${id} done (${upload.writer.files} files, ${upload.writer.bytes} bytes)`);
    return { files: upload.writer.files, bytes: upload.writer.bytes };
  }

  async abort(id: string): Promise<void> {
    const transfer = this.transfers.get(id);
    if (transfer) await this.stop(transfer, "aborted by the client");
  }

  /** The connection that owned these transfers is gone. */
  async abortOwnedBy(owner: object): Promise<void> {
    await Promise.all([...this.transfers.values()].filter((t) => t.owner === owner).map((t) => this.stop(t, "its connection closed")));
  }

  private async stop(transfer: Transfer, why: string): Promise<void> {
    this.forget(transfer);
    await transfer.chain.catch(() => undefined);
    await this.release(transfer, why);
  }

  private async release(transfer: Transfer, why: string): Promise<void> {
    if (transfer.direction === "put") await transfer.writer.abort();
    else await transfer.reader.close();
    this.log(`volume ${transfer.volume}: transfer ${transfer.id} stopped (${why}); temporary data removed`);
  }

  private add(transfer: Transfer): void {
    this.transfers.set(transfer.id, transfer);
    this.touch(transfer);
  }

  private forget(transfer: Transfer): void {
    clearTimeout(transfer.idle);
    this.transfers.delete(transfer.id);
  }

  private touch(transfer: Transfer): void {
    clearTimeout(transfer.idle);
    transfer.idle = setTimeout(() => void this.stop(transfer, `idle for ${IDLE_MS / 60_000} minutes`), IDLE_MS);
    transfer.idle.unref();
  }

  private find(id: string, direction: Transfer["direction"]): Transfer {
    const transfer = this.transfers.get(id);
    if (!transfer || transfer.direction !== direction) throw notFound(`no ${direction === "put" ? "upload" : "download"} '${id}' in progress (it ended, failed or was aborted)`);
    return transfer;
  }

  /**
   * Runs `step` after the transfer's earlier steps; `seq` must be the next in order. A failed
   * step aborts the transfer (its temporary data is removed) and fails every later one.
   */
  private inOrder<T>(transfer: Transfer, seq: number, step: () => Promise<T>): Promise<T> {
    if (seq !== transfer.nextSeq) {
      const error = usageError(`chunk ${seq} of transfer ${transfer.id} arrived where ${transfer.nextSeq} was expected`);
      void this.stop(transfer, error.message);
      return Promise.reject(error);
    }
    transfer.nextSeq++;
    this.touch(transfer);
    const result = transfer.chain.then(step);
    transfer.chain = result.then(
      () => undefined,
      async (error) => {
        // Not stop(): that waits for this very chain.
        if (this.transfers.get(transfer.id) === transfer) {
          this.forget(transfer);
          await this.release(transfer, (error as Error).message);
        }
        throw error;
      },
    );
    transfer.chain.catch(() => undefined);
    return result;
  }
}

function newTransferId(): string {
  return `t${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
}
