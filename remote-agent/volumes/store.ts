/**
 * Volumes: named folders under DATA/volumes/<name> that outlive sessions. This module owns
 * their lifecycle (create, list, ls, rm, delete), which sessions have them mounted (a mounted
 * volume cannot be deleted), and the transfers in and out of them (see ./transfers.ts).
 * Every path a client names is resolved by ./paths.ts, which refuses anything leaving the volume.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import type { Resources, VolumeEntry, VolumeInfo } from "../protocol/messages";
import { AgentError, notFound, usageError } from "../agent/errors";
import type { Log } from "../agent/log";
import { checkVolumeName, isAbandonedTemp, pathSegments, resolveInside, TEMP_PREFIX, VolumePathError } from "./paths";

export interface VolumeMount {
  volume: string;
  /** The volume's folder on the agent's host. */
  source: string;
  /** Where the runtime sees it. */
  target: string;
  readOnly: boolean;
}

export class VolumeStore {
  readonly root: string;
  /** volume name -> sessions that have it mounted. */
  private readonly mountedBy = new Map<string, Set<string>>();

  constructor(
    dataDir: string,
    private readonly log: Log,
  ) {
    this.root = path.join(dataDir, "volumes");
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    this.removeLeftoverTemps();
  }

  /** The resolved folder of an existing volume. */
  volumeRoot(name: string): string {
    checkVolumeName(name);
    const dir = path.join(this.root, name);
    try {
      if (fs.lstatSync(dir).isDirectory()) return fs.realpathSync(dir);
    } catch {
      // fall through
    }
    throw notFound(`no volume named '${name}'; ${this.describeNames()}; make it with \`%volume create ${name}\``);
  }

  /** Resolves `relative` inside volume `name` (refusing escapes). */
  resolve(name: string, relative: string): { volumeRoot: string; absolute: string } {
    const volumeRoot = this.volumeRoot(name);
    return { volumeRoot, absolute: resolveInside(volumeRoot, relative) };
  }

  create(name: string): boolean {
    checkVolumeName(name);
    try {
      fs.mkdirSync(path.join(this.root, name), { mode: 0o755 });
      this.log(`volume ${name}: created`);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    }
  }

  async list(): Promise<VolumeInfo[]> {
    const infos: VolumeInfo[] = [];
    for (const name of this.names()) {
      const { bytes, files } = await measure(path.join(this.root, name));
      infos.push({ name, bytes, files, mountedBy: [...(this.mountedBy.get(name) ?? [])] });
    }
    return infos;
  }

  async ls(name: string, relative: string): Promise<{ path: string; entries: VolumeEntry[] }> {
    const { absolute } = this.resolve(name, relative);
    const shown = pathSegments(relative).join("/");
    let stat: fs.Stats;
    try {
      stat = await fsp.stat(absolute);
    } catch {
      throw notFound(`'${shown}' does not exist in volume '${name}'`);
    }
    if (!stat.isDirectory()) return { path: shown, entries: [entryOf(path.basename(absolute), stat)] };
    const entries: VolumeEntry[] = [];
    for (const entryName of (await fsp.readdir(absolute)).sort()) {
      if (entryName.startsWith(TEMP_PREFIX)) continue;
      const entryStat = await fsp.lstat(path.join(absolute, entryName)).catch(() => undefined);
      if (entryStat) entries.push(entryOf(entryName, entryStat));
    }
    return { path: shown, entries };
  }

  /** Removes a file, a symlink (the link, not its target), or a folder with `recursive`. */
  async rm(name: string, relative: string, recursive: boolean): Promise<number> {
    const segments = pathSegments(relative);
    if (segments.length === 0) throw usageError(`%volume rm needs a path inside volume '${name}'; to remove the whole volume: %volume delete ${name} --yes`);
    const { absolute: parent } = this.resolve(name, segments.slice(0, -1).join("/"));
    const target = path.join(parent, segments[segments.length - 1]);
    const shown = segments.join("/");
    let stat: fs.Stats;
    try {
      stat = await fsp.lstat(target);
    } catch {
      throw notFound(`'${shown}' does not exist in volume '${name}'`);
    }
    if (stat.isDirectory()) {
      if (!recursive) throw usageError(`'${shown}' is a folder; remove it with -r (%volume rm ${name} ${shown} -r)`);
      const { files } = await measure(target);
      await fsp.rm(target, { recursive: true, force: true });
      this.log(`volume ${name}: removed folder (${files} files)`);
      return files;
    }
    await fsp.unlink(target);
    return 1;
  }

  async delete(name: string): Promise<void> {
    const dir = this.volumeRoot(name);
    const users = this.mountedBy.get(name);
    if (users && users.size > 0) {
      throw new AgentError(
        "usage",
        `volume '${name}' is mounted by session${users.size > 1 ? "s" : ""} ${[...users].map((s) => `'${s}'`).join(", ")}; ` +
          `stop ${users.size > 1 ? "them" : "it"} first (%remote stop NAME), then delete the volume`,
      );
    }
    await fsp.rm(dir, { recursive: true, force: true });
    this.log(`volume ${name}: deleted`);
  }

  /**
   * Checks and records the mounts a session asks for (resources.volumes); the backend makes them.
   * Throws (before anything starts) when a volume is missing or a mount point is not acceptable.
   */
  mountsFor(session: string, volumes: NonNullable<Resources["volumes"]>): VolumeMount[] {
    const mounts = volumes.map((volume) => {
      const target = path.posix.normalize(volume.mountPath);
      if (!path.posix.isAbsolute(target) || target === "/" || volume.mountPath.split("/").includes("..")) {
        throw new VolumePathError(`volumes=${volume.name}:${volume.mountPath}: the mount point must be an absolute path other than / (e.g. /data)`);
      }
      return { volume: volume.name, source: this.volumeRoot(volume.name), target, readOnly: volume.readOnly };
    });
    const targets = mounts.map((m) => m.target);
    if (new Set(targets).size !== targets.length) throw usageError(`volumes=: two volumes are mounted at the same path (${targets.join(", ")})`);
    for (const mount of mounts) {
      if (!this.mountedBy.has(mount.volume)) this.mountedBy.set(mount.volume, new Set());
      this.mountedBy.get(mount.volume)!.add(session);
    }
    return mounts;
  }

  /** The session has stopped: its volumes may be deleted again. */
  release(session: string): void {
    for (const [volume, users] of this.mountedBy) {
      users.delete(session);
      if (users.size === 0) this.mountedBy.delete(volume);
    }
  }

  private names(): string[] {
    return fs
      .readdirSync(this.root, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  }

  private describeNames(): string {
    const names = this.names();
    return names.length ? `volumes: ${names.join(", ")}` : "there are no volumes";
  }

  /** Temporary files of transfers that an earlier agent process did not finish. */
  private removeLeftoverTemps(): void {
    const visit = (dir: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.name.startsWith(TEMP_PREFIX)) {
          if (!isAbandonedTemp(entry.name)) continue; // another live agent's transfer
          fs.rmSync(full, { recursive: true, force: true });
          this.log(`volumes: removed an unfinished transfer's temporary ${full}`);
        } else if (entry.isDirectory()) visit(full);
      }
    };
    for (const name of this.names()) visit(path.join(this.root, name));
  }
}

function entryOf(name: string, stat: fs.Stats): VolumeEntry {
  const type = stat.isFile() ? "file" : stat.isDirectory() ? "dir" : stat.isSymbolicLink() ? "symlink" : "other";
  return { name, type, size: stat.isDirectory() ? 0 : stat.size, mtime: stat.mtimeMs };
}

/** Total bytes and number of files under `dir` (symlinks not followed, temporaries not counted). */
async function measure(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const visit = async (current: string) => {
    const entries = await fsp.readdir(current, { withFileTypes: true }).catch(() => [] as fs.Dirent[]);
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) await visit(full);
      else if (entry.isFile()) {
        files++;
        bytes += (await fsp.lstat(full).catch(() => undefined))?.size ?? 0;
      }
    }
  };
  await visit(dir);
  return { bytes, files };
}
