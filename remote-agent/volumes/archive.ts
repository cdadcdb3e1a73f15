/**
 * The byte stream a volume transfer carries, both ways (put: kernel -> agent, get: agent ->
 * kernel): a file or a whole folder as one stream of records,
 *
 *     [u32 BE header length][header JSON {p, t, s, m}][s bytes of file data]   (repeated)
 *
 * p: '/'-separated path relative to what is transferred ("" = the file or folder itself),
 * t: "f" file or "d" folder, s: size in bytes, m: permission bits. Many small files therefore
 * travel packed into the same 1 MiB chunks, with no round trip per file; a large file is read and
 * written a chunk at a time, so memory stays constant. The whole stream is hashed (sha256) on both
 * sides and compared at the end.
 *
 * The writer builds the result in a temporary path beside its destination (same filesystem),
 * fsyncs it, and `installStaged` renames it into place only after the hash matched: a failure or
 * an interrupt leaves no partial file at the destination.
 */
import { execFile } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { collectTransferGarbage } from "../gc-tuning";
import { archiveEntryPath, isInside, VolumePathError } from "./paths";

export const CHUNK_BYTES = 1024 * 1024;
/** A file being written starts going to disk after every this many bytes (ArchiveWriter.startWriteback). */
const WRITEBACK_BYTES = 32 * 1024 * 1024;
/** An entry header's JSON is far smaller; a larger length means a corrupt stream. */
const MAX_ENTRY_HEADER_BYTES = 64 * 1024;

interface EntryHeader {
  p: string;
  t: "f" | "d";
  s: number;
  m: number;
}

export interface ArchiveEntry extends EntryHeader {
  /** Where the sender reads it. */
  abs: string;
}

export interface ArchivePlan {
  kind: "file" | "dir";
  entries: ArchiveEntry[];
  /** Files in it, and their data bytes (what a user calls the size). */
  files: number;
  dataBytes: number;
  /** Exact length of the stream, headers included (for the progress bar). */
  streamBytes: number;
}

function headerBytes(entry: EntryHeader): Buffer {
  const json = Buffer.from(JSON.stringify({ p: entry.p, t: entry.t, s: entry.s, m: entry.m }), "utf8");
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(json.length, 0);
  return Buffer.concat([prefix, json]);
}

/**
 * What a transfer of `source` (a file or a folder, recursively) will send. With `confine`, the
 * source is inside a volume: a symlink found inside it must resolve inside `confine`, or the whole
 * transfer is refused. Symlinks to files are sent as the files they point at; symlinks to folders
 * are refused (they can loop); sockets and FIFOs are skipped.
 */
export async function planArchive(source: string, confine?: string): Promise<ArchivePlan> {
  const entries: ArchiveEntry[] = [];
  const top = await fsp.stat(source);
  const shown = (rel: string) => (rel === "" ? path.basename(source) : rel);

  const add = async (abs: string, rel: string, stat: fs.Stats): Promise<void> => {
    if (stat.isFile()) entries.push({ p: rel, t: "f", s: stat.size, m: stat.mode & 0o777, abs });
    else if (stat.isDirectory()) {
      entries.push({ p: rel, t: "d", s: 0, m: stat.mode & 0o777, abs });
      const names = (await fsp.readdir(abs)).sort();
      for (const name of names) {
        const child = path.join(abs, name);
        const childRel = rel === "" ? name : `${rel}/${name}`;
        let childStat = await fsp.lstat(child);
        if (childStat.isSymbolicLink()) {
          let real: string;
          try {
            real = await fsp.realpath(child);
          } catch {
            throw new VolumePathError(`'${shown(childRel)}' is a symlink to nothing (dangling); remove it or transfer its target`);
          }
          if (confine && !isInside(confine, real)) {
            throw new VolumePathError(`'${shown(childRel)}' is a symlink that points outside the volume; nothing was transferred`);
          }
          childStat = await fsp.stat(child);
          if (childStat.isDirectory()) {
            throw new VolumePathError(`'${shown(childRel)}' is a symlink to a folder; symlinked folders are not transferred (they can loop)`);
          }
        }
        await add(child, childRel, childStat);
      }
    }
  };
  await add(source, "", top);
  let files = 0;
  let dataBytes = 0;
  let streamBytes = 0;
  for (const entry of entries) {
    if (entry.t === "f") {
      files++;
      dataBytes += entry.s;
    }
    streamBytes += headerBytes(entry).length + entry.s;
  }
  return { kind: top.isDirectory() ? "dir" : "file", entries, files, dataBytes, streamBytes };
}

/**
 * Reads a planned archive as a stream of chunks of at most `chunkBytes`; hashes what it yields.
 *
 * The chunks are window + 2 buffers used in turn, not a new buffer each, for a sender that keeps
 * at most `window` chunks unacknowledged: chunk n is read only after chunk n - window was
 * acknowledged, so a buffer comes round again only once its previous chunk was received (one more
 * for the chunk being sent, one for the chunk being read). Without reuse, a fast sender piles up
 * hundreds of MiB of dead 1 MiB buffers before V8 collects them (little JS heap is allocated, so
 * collections are rare).
 */
export class ArchiveReader {
  private readonly hash: Hash = createHash("sha256");
  private next = 0;
  private header?: { bytes: Buffer; offset: number };
  private file?: { handle: fsp.FileHandle; remaining: number; entry: ArchiveEntry };
  private finished = false;
  bytesRead = 0;
  private readonly buffers: Buffer[] = [];
  private readonly ring: number;
  private chunks = 0;

  constructor(
    private readonly plan: ArchivePlan,
    private readonly chunkBytes: number,
    window: number,
  ) {
    this.ring = window + 2;
  }

  private nextBuffer(): Buffer {
    const slot = this.chunks++ % this.ring;
    return (this.buffers[slot] ??= Buffer.allocUnsafe(this.chunkBytes));
  }

  /** The next chunk, or null after the last one. */
  async read(): Promise<Buffer | null> {
    if (this.finished) return null;
    const chunk = this.nextBuffer();
    let filled = 0;
    while (filled < chunk.length) {
      if (this.header) {
        const n = this.header.bytes.copy(chunk, filled, this.header.offset);
        filled += n;
        this.header.offset += n;
        if (this.header.offset === this.header.bytes.length) this.header = undefined;
        continue;
      }
      if (this.file) {
        if (this.file.remaining === 0) {
          await this.file.handle.close();
          this.file = undefined;
          continue;
        }
        const want = Math.min(this.file.remaining, chunk.length - filled);
        const { bytesRead } = await this.file.handle.read(chunk, filled, want, null);
        if (bytesRead === 0) {
          throw new Error(`'${this.file.entry.p || path.basename(this.file.entry.abs)}' became shorter while it was being sent; send it again`);
        }
        filled += bytesRead;
        this.file.remaining -= bytesRead;
        continue;
      }
      const entry = this.plan.entries[this.next++];
      if (!entry) break;
      this.header = { bytes: headerBytes(entry), offset: 0 };
      if (entry.t === "f") {
        // The plan checked the links; O_NOFOLLOW is not used here because a planned file may be a
        // symlink that was resolved and checked to stay inside.
        const handle = await fsp.open(entry.abs, fs.constants.O_RDONLY);
        this.file = { handle, remaining: entry.s, entry };
      }
    }
    if (filled === 0) {
      this.finished = true;
      return null;
    }
    const out = filled === chunk.length ? chunk : chunk.subarray(0, filled);
    this.hash.update(out);
    this.bytesRead += out.length;
    collectTransferGarbage(out.length);
    return out;
  }

  /** The sha256 (hex) of everything read; valid once read() returned null. */
  digest(): string {
    return this.hash.copy().digest("hex");
  }

  async close(): Promise<void> {
    this.finished = true;
    await this.file?.handle.close().catch(() => undefined);
    this.file = undefined;
    this.buffers.splice(0);
  }
}

/**
 * Writes an archive stream into `staging` (a path that must not exist: the temporary file or
 * folder beside the destination). Entries may only create paths under `staging`.
 */
export class ArchiveWriter {
  private readonly hash: Hash = createHash("sha256");
  private pending: Buffer = Buffer.alloc(0);
  private file?: { handle: fsp.FileHandle; remaining: number; path: string; unsynced: number; syncing?: Promise<void>; writebackError?: unknown };
  private readonly handlesToSync: string[] = [];
  private seenRoot = false;
  files = 0;
  bytes = 0;

  constructor(
    readonly staging: string,
    readonly kind: "file" | "dir",
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    collectTransferGarbage(chunk.length);
    // An entry header split by the chunk boundary is completed from the chunk's start only: the
    // whole 1 MiB chunk is never copied to join it.
    let rest = chunk;
    while (this.pending.length > 0 && rest.length > 0) {
      const head = rest.subarray(0, 4 + MAX_ENTRY_HEADER_BYTES);
      rest = rest.subarray(head.length);
      const joined = Buffer.concat([this.pending, head]);
      this.pending = Buffer.alloc(0);
      await this.consume(joined);
    }
    if (rest.length > 0) await this.consume(rest);
  }

  /** Writes `data` out; keeps a trailing incomplete entry header as `pending`. */
  private async consume(data: Buffer): Promise<void> {
    while (data.length > 0) {
      if (this.file) {
        const n = Math.min(this.file.remaining, data.length);
        if (n > 0) await this.file.handle.write(data, 0, n);
        this.file.remaining -= n;
        this.file.unsynced += n;
        if (this.file.unsynced >= WRITEBACK_BYTES && !this.file.syncing) this.startWriteback(this.file);
        data = data.subarray(n);
        if (this.file.remaining === 0) await this.closeFile();
        continue;
      }
      if (data.length < 4) break;
      const length = data.readUInt32BE(0);
      if (length > MAX_ENTRY_HEADER_BYTES) throw new Error("the transfer stream is corrupt (an entry header is too large)");
      if (data.length < 4 + length) break;
      const header = JSON.parse(data.subarray(4, 4 + length).toString("utf8")) as EntryHeader;
      data = data.subarray(4 + length);
      await this.startEntry(header);
    }
    if (data.length > 0) this.pending = Buffer.from(data);
  }

  private async startEntry(header: EntryHeader): Promise<void> {
    if (typeof header.p !== "string" || (header.t !== "f" && header.t !== "d") || !Number.isSafeInteger(header.s) || header.s < 0) {
      throw new Error("the transfer stream is corrupt (a malformed entry header)");
    }
    if (header.p === "" ? this.seenRoot : !this.seenRoot) throw new Error("the transfer stream is corrupt (entries out of order)");
    this.seenRoot = true;
    if (header.p === "" && (header.t === "d") !== (this.kind === "dir")) {
      throw new Error(`the transfer sends a ${header.t === "d" ? "folder" : "file"} where a ${this.kind === "dir" ? "folder" : "file"} was announced`);
    }
    const target = archiveEntryPath(this.staging, header.p);
    const mode = (header.m ?? 0o644) & 0o777;
    if (header.t === "d") {
      await fsp.mkdir(target, { mode: mode | 0o700 });
      return;
    }
    // O_EXCL|O_NOFOLLOW: the staging tree is ours and new; nothing in it may be replaced or followed.
    const handle = await fsp.open(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode | 0o600);
    this.files++;
    this.file = { handle, remaining: header.s, path: target, unsynced: 0 };
    if (header.s === 0) await this.closeFile();
  }

  /**
   * Starts writing what the file has so far to disk (fdatasync, in libuv's pool) while the
   * transfer goes on, so that the fsync at its end waits for the last few MiB only, not all of
   * a large file (0.3-0.5 s per GiB here). One at a time per file. A failure is kept and thrown
   * at close: Linux reports a writeback error to one fsync only, so the final fsync could succeed
   * although data was lost.
   */
  private startWriteback(file: NonNullable<ArchiveWriter["file"]>): void {
    file.unsynced = 0;
    file.syncing = file.handle.datasync().then(
      () => {
        file.syncing = undefined;
      },
      (error: unknown) => {
        file.syncing = undefined;
        file.writebackError ??= error;
      },
    );
  }

  private async closeFile(): Promise<void> {
    const file = this.file!;
    this.file = undefined;
    await file.syncing;
    if (file.writebackError) {
      await file.handle.close().catch(() => undefined);
      throw file.writebackError;
    }
    // One file: fsync it here. A folder: one syncfs at the end is far cheaper than thousands of fsyncs.
    if (this.kind === "file") await file.handle.sync();
    await file.handle.close();
  }

  /** Checks the hash and completeness, then makes the staged data durable. */
  async finish(expectedSha256: string): Promise<void> {
    if (this.file || this.pending.length > 0 || !this.seenRoot) {
      throw new Error("the transfer ended before all of its data arrived; nothing was written");
    }
    const actual = this.hash.digest("hex");
    if (actual !== expectedSha256) {
      throw new Error(`sha256 mismatch: the sender hashed ${expectedSha256}, the receiver ${actual}; nothing was written`);
    }
    if (this.kind === "dir") await syncFilesystem(this.staging);
  }

  /** Removes whatever was staged. */
  async abort(): Promise<void> {
    await this.file?.syncing;
    await this.file?.handle.close().catch(() => undefined);
    this.file = undefined;
    await fsp.rm(this.staging, { recursive: true, force: true });
  }
}

/** syncfs(2) through coreutils' `sync -f` (node has no binding); falls back to fsyncing nothing more. */
function syncFilesystem(anyPath: string): Promise<void> {
  return new Promise((resolve) => execFile("sync", ["-f", anyPath], () => resolve()));
}

/**
 * Moves a verified staged file or folder to `destination`: a new path is one rename; an existing
 * file is replaced by a rename (atomically); an existing folder receives the staged folder's
 * entries (each file renamed into place, folders merged). A file never replaces a folder or the
 * other way round.
 */
export async function installStaged(staging: string, destination: string): Promise<void> {
  const stagedStat = await fsp.lstat(staging);
  let existing: fs.Stats | undefined;
  try {
    existing = await fsp.lstat(destination);
  } catch {
    existing = undefined;
  }
  if (!existing || (existing.isFile() && stagedStat.isFile())) {
    await fsp.rename(staging, destination);
  } else if (existing.isDirectory() && stagedStat.isDirectory()) {
    await mergeInto(staging, destination);
    await fsp.rm(staging, { recursive: true, force: true });
  } else {
    await fsp.rm(staging, { recursive: true, force: true });
    throw new VolumePathError(`'${path.basename(destination)}' exists as a ${existing.isDirectory() ? "folder" : "file"}; remove it first or choose another path`);
  }
  await fsyncDir(path.dirname(destination));
}

async function mergeInto(from: string, to: string): Promise<void> {
  for (const name of await fsp.readdir(from)) {
    const source = path.join(from, name);
    const target = path.join(to, name);
    const stat = await fsp.lstat(source);
    const there = await fsp.lstat(target).catch(() => undefined);
    if (stat.isDirectory() && there?.isDirectory()) await mergeInto(source, target);
    else if (there && there.isDirectory() !== stat.isDirectory()) {
      throw new VolumePathError(`'${name}' exists as a ${there.isDirectory() ? "folder" : "file"} at the destination; remove it first`);
    } else await fsp.rename(source, target);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, fs.constants.O_RDONLY).catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // some filesystems refuse fsync on folders
  } finally {
    await handle.close();
  }
}
