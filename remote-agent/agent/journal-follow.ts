/**
 * Following a job that another agent process on the same data dir runs: after an SSH drop, the
 * next `farlab-agent serve --stdio` is a new process, while the old one (its client gone) still
 * runs the job to its end. The journal is the meeting point: the follower replays it, then reads
 * what the owner appends (polling the file) until `done`. If the owner has died without writing
 * `done`, the follower ends the job in the journal itself, so no client waits forever.
 */
import * as fs from "node:fs";
import type { JobEvent } from "../protocol/messages";
import type { Follower } from "./job";
import { JournalWriter, type Journal } from "./journal";

const POLL_MS = 200;

/** Replays events with seq > fromSeq at once, then follows; returns the unfollow. */
export function followForeignJob(journal: Journal, jobId: string, fromSeq: number, deliver: Follower): () => void {
  const file = journal.pathOf(jobId);
  let offset = 0;
  let partial = "";
  let fileLastSeq = 0;
  let done = false;

  /** Delivers complete new lines; returns whether `done` has been seen. */
  const readNew = (): boolean => {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch {
      return false;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= offset) return done;
      const bytes = Buffer.alloc(size - offset);
      const read = fs.readSync(fd, bytes, 0, bytes.length, offset);
      offset += read;
      partial += bytes.subarray(0, read).toString("utf8");
    } finally {
      fs.closeSync(fd);
    }
    const lines = partial.split("\n");
    partial = lines.pop() ?? ""; // a line still being written
    for (const line of lines) {
      if (line === "") continue;
      let event: JobEvent;
      try {
        event = JSON.parse(line) as JobEvent;
      } catch {
        continue;
      }
      if (event.type !== "event") continue; // a runner mark (./journal.ts)
      fileLastSeq = Math.max(fileLastSeq, event.seq);
      if (event.seq > fromSeq) deliver(event);
      if (event.event.kind === "done") done = true;
    }
    return done;
  };

  /** The owner died mid-job: close the job in its journal (this process is now its only writer). */
  const endOrphan = () => {
    const writer = new JournalWriter(file);
    const now = Date.now();
    const events: JobEvent[] = [
      {
        type: "event",
        jobId,
        seq: fileLastSeq + 1,
        time: now,
        event: { kind: "error", ename: "AgentExitedError", evalue: "the agent process running this job exited before it finished; its output above is all there is", traceback: [] },
      },
      { type: "event", jobId, seq: fileLastSeq + 2, time: now, event: { kind: "done", status: "error", elapsedMs: 0 } },
    ];
    try {
      for (const event of events) writer.append(event);
    } finally {
      writer.close();
    }
  };

  const tick = (): boolean => {
    if (readNew()) return true;
    if (journal.ownedByLiveAgent(jobId)) return false;
    // Read again: the owner writes `done` before it gives up ownership.
    if (readNew()) return true;
    endOrphan();
    return readNew();
  };

  if (tick()) return () => undefined;
  const timer = setInterval(() => {
    if (tick()) clearInterval(timer);
  }, POLL_MS);
  return () => clearInterval(timer);
}
