/**
 * The agent's log: stderr and DATA/agent.log, never stdout (with `serve --stdio`, stdout is the
 * protocol). Secrets must never be passed here.
 */
import * as fs from "node:fs";

/**
 * `fileOnly` (where the log has a file): for lines written for every cell (`job X: queued`),
 * which go to agent.log alone. On stderr each line is a write that wakes whoever reads it (the
 * kernel, for the embedded agent) in the middle of the cell's round trip.
 */
export type Log = ((line: string) => void) & { fileOnly?: (line: string) => void };

export function createLog(file: string | null, stderr: NodeJS.WritableStream | null = process.stderr): Log {
  let fd: number | null = null;
  if (file) {
    try {
      fd = fs.openSync(file, "a");
    } catch {
      fd = null; // a read-only data dir must not stop the agent; stderr still gets the lines
    }
  }
  // When whoever reads stderr is gone (the parent died), writes fail with EPIPE: stop writing
  // there. Unhandled, that error would be logged, which writes to stderr again, and so on.
  let toStderr = stderr;
  toStderr?.on("error", () => {
    toStderr = null;
  });
  const toFile = (text: string) => {
    if (fd === null) return;
    try {
      fs.writeSync(fd, text);
    } catch {
      // disk full: keep serving
    }
  };
  const log: Log = (line: string) => {
    const text = `${new Date().toISOString()} ${line}\n`;
    toFile(text);
    if (toStderr && !(toStderr as NodeJS.WriteStream).destroyed) toStderr.write(text);
  };
  if (fd !== null) log.fileOnly = (line: string) => toFile(`${new Date().toISOString()} ${line}\n`);
  return log;
}
