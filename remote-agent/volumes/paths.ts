/**
 * Names and paths inside volumes, checked in one place: every volume operation (create, ls, put,
 * get, rm, delete, mounts) goes through these functions, so a path that would leave its volume
 * (`..`, an absolute path, a symlink pointing out, a symlinked intermediate folder pointing out)
 * is refused the same way everywhere.
 *
 * The check resolves the deepest existing ancestor with realpath and compares it with the
 * volume's own realpath; the caller then works on the resolved path, and opens files with
 * O_NOFOLLOW where it creates or reads them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { AgentError } from "../agent/errors";
import { processAlive } from "../agent/pid-file";

export const VOLUME_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Temporary files and folders of unfinished transfers; hidden from `ls`, removed at start. */
export const TEMP_PREFIX = ".farlab-tmp-";

/**
 * `.farlab-tmp-<pid>-<id>`: the agent process that owns it is in the name, so an agent starting
 * on a data dir that another live agent also serves (two kernels' embedded agents share one)
 * removes only the temporaries of agents that are gone.
 */
export function tempName(id: string): string {
  return `${TEMP_PREFIX}${process.pid}-${id}`;
}

/** Whether a temporary's owner is gone (its pid is not a live process, or unreadable). */
export function isAbandonedTemp(name: string): boolean {
  const pid = name.startsWith(TEMP_PREFIX) ? Number(/^(\d+)-/.exec(name.slice(TEMP_PREFIX.length))?.[1]) : NaN;
  if (!Number.isInteger(pid) || pid <= 0) return true; // no owner recorded
  return !processAlive(pid);
}

export class VolumePathError extends AgentError {
  override name = "VolumePathError";
  constructor(message: string) {
    super("usage", message);
  }
}

export function checkVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new AgentError("usage", `'${name}' is not a volume name; accepted: ${VOLUME_NAME.source} (lower-case letters, digits, '.', '_', '-', at most 63 characters)`);
  }
}

/**
 * Splits a volume-relative path into its segments, refusing what cannot name a place inside a
 * volume. "", "." and "/"-free forms all mean the root ([]).
 */
export function pathSegments(relative: string): string[] {
  if (relative.includes("\0")) throw new VolumePathError(`the path ${JSON.stringify(relative)} contains a NUL character`);
  if (path.posix.isAbsolute(relative) || /^[A-Za-z]:[\\/]/.test(relative)) {
    throw new VolumePathError(`'${relative}' is an absolute path; paths are relative to the volume root (e.g. data/x.csv)`);
  }
  const segments = relative.split(/[\\/]+/).filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) {
    throw new VolumePathError(`'${relative}' leaves the volume ('..' is not accepted); paths are relative to the volume root`);
  }
  if (segments.some((s) => s.startsWith(TEMP_PREFIX))) {
    throw new VolumePathError(`'${relative}' names a temporary file of a transfer (${TEMP_PREFIX}*)`);
  }
  return segments;
}

/** Whether `candidate` is `root` or inside it (both absolute and already resolved). */
export function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * The absolute, symlink-free path of `relative` inside the volume at `root` (itself resolved).
 * The path need not exist; every part that exists is resolved and must stay inside the root,
 * so a symlink (final or intermediate) pointing out is refused. `shown` names the path in errors.
 */
export function resolveInside(root: string, relative: string): string {
  const segments = pathSegments(relative);
  let resolved = root;
  for (let i = 0; i < segments.length; i++) {
    const next = path.join(resolved, segments[i]);
    let real: string;
    try {
      real = fs.realpathSync(next);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        // A dangling symlink is refused too: following it on create would write outside.
        if (isSymlink(next)) throw escapes(relative, segments.slice(0, i + 1).join("/"));
        return path.join(next, ...segments.slice(i + 1));
      }
      if ((error as NodeJS.ErrnoException).code === "ENOTDIR") {
        throw new VolumePathError(`'${segments.slice(0, i).join("/")}' is a file, not a folder, in '${relative}'`);
      }
      throw error;
    }
    if (!isInside(root, real)) throw escapes(relative, segments.slice(0, i + 1).join("/"));
    resolved = real;
  }
  return resolved;
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function escapes(relative: string, part: string): VolumePathError {
  const what = part === relative ? `'${relative}'` : `'${relative}' (through '${part}')`;
  return new VolumePathError(`${what} leaves the volume: it is or goes through a symlink that points outside it`);
}

/**
 * A path inside an archive (a relative, '/'-separated path written by the sender) made safe to
 * join onto a destination folder: the receiver refuses `..`, absolute paths and empty segments,
 * so a hostile peer cannot write outside the destination.
 */
export function archiveEntryPath(destination: string, entry: string): string {
  if (entry === "") return destination;
  const segments = entry.split("/");
  if (entry.includes("\0") || entry.startsWith("/") || segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new VolumePathError(`the transfer named an unsafe path ${JSON.stringify(entry)}; nothing was written`);
  }
  return path.join(destination, ...segments);
}
