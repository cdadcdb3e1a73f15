/**
 * Pid files: while an agent process holds something on a data dir (a job's journal, a Docker
 * session's channel) it keeps its pid in a file beside it, so that another agent process on the
 * same data dir can tell a holder that is still alive from one that died.
 */
import * as fs from "node:fs";

/** Whether process `pid` exists (this one included; another user's too). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
}

/** The pid in `file` if that process is alive (this one included); undefined: no file, no pid, or gone. */
export function livePidIn(file: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
}

/** Whether `file` names a live process other than this one (false: no file, no pid, or gone). */
export function heldByAnotherLiveProcess(file: string): boolean {
  const pid = livePidIn(file);
  return pid !== undefined && pid !== process.pid;
}
