/**
 * Volume mounts for the process backend: the runtime must see each volume at the absolute path
 * the cell asked for (`volumes=data:/data`), without changing the host's mount table. The runtime
 * is started through util-linux `unshare --mount --propagation private`, which gives it a private
 * mount namespace, and a small sh script that bind-mounts each volume there (and remounts it
 * read-only for `:ro`) before exec'ing the runtime. The process id stays the runtime's (unshare
 * and sh both exec), so signals to its process group work as before; the mounts disappear with
 * the namespace when the runtime and its children exit. Writes go straight to the volume folder,
 * so what a cell wrote is in the volume when the cell ends. Needs root (CAP_SYS_ADMIN): the
 * agent runs as root on the machines this backend is for. See docs/volumes.md.
 */
import { RuntimeStartError } from "../backends/types";
import type { VolumeMount } from "./store";

const MOUNT_SCRIPT = [
  "set -e",
  'while [ "$1" != "--" ]; do',
  '  src=$1; dst=$2; mode=$3; shift 3',
  '  mkdir -p "$dst"',
  '  mount --bind "$src" "$dst"',
  '  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$dst"; fi',
  "done",
  "shift",
  'exec "$@"',
].join("\n");

/** The command that starts `command args` with `mounts` in place (unchanged when there are none). */
export function withVolumeMounts(command: string, args: readonly string[], mounts: readonly VolumeMount[]): { command: string; args: string[] } {
  if (mounts.length === 0) return { command, args: [...args] };
  if (process.getuid?.() !== 0) {
    throw new RuntimeStartError(
      "volumes= in the process backend needs the agent to run as root (it bind-mounts each volume in a private mount namespace); " +
        "run farlab-agent as root, or use the docker backend",
    );
  }
  const triples = mounts.flatMap((m) => [m.source, m.target, m.readOnly ? "ro" : "rw"]);
  return {
    command: "unshare",
    args: ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", MOUNT_SCRIPT, "farlab-mounts", ...triples, "--", command, ...args],
  };
}
