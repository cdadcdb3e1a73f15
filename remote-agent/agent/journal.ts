/**
 * A job's journal: its events, one JSON line each, in DATA/journal/<jobId>.jsonl. An event is
 * written (a write(2) to the file, so it survives the agent dying) before it is sent to anyone;
 * replays after a reconnect read it back.
 *
 * While a job runs, DATA/journal/<jobId>.owner holds the pid of the agent process writing it, so
 * another agent process on the same data dir (a new `serve --stdio` after an SSH reconnect) can
 * follow the job live, and can tell a job whose agent died from one still running.
 *
 * A journal may also hold mark lines, `{"type":"mark","runnerSeq":N}`, written in the same
 * write(2) as the event they follow: the runner messages up to seq N are in the journal. An agent
 * that adopts a runtime whose agent died (Docker backend) resumes the runner after the last mark,
 * so each runner message is journalled once. Readers skip them (they are not events).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { JobEvent } from "../protocol/messages";
import { heldByAnotherLiveProcess } from "./pid-file";

export class Journal {
  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  pathOf(jobId: string): string {
    return path.join(this.dir, `${jobId}.jsonl`);
  }

  /**
   * `existing`: the journal of an earlier agent process, which may end in a torn line. The
   * `.owner` file is written with the first event (or `claim()`), not now.
   */
  openWriter(jobId: string, options: { existing?: boolean } = {}): JournalWriter {
    return new JournalWriter(this.pathOf(jobId), path.join(this.dir, `${jobId}.owner`), { existing: options.existing ?? false });
  }

  /** Whether an agent process other than this one is still writing the job's journal. */
  ownedByLiveAgent(jobId: string): boolean {
    return heldByAnotherLiveProcess(path.join(this.dir, `${jobId}.owner`));
  }

  exists(jobId: string): boolean {
    return isSafeJobId(jobId) && fs.existsSync(this.pathOf(jobId));
  }

  /** The job's events with seq > fromSeq, in order; [] for an unknown job. */
  read(jobId: string, fromSeq = 0): JobEvent[] {
    return this.scan(jobId, fromSeq).events;
  }

  /** The job's events and its last runner mark (see above): where an adopting agent resumes. */
  readForResume(jobId: string): { events: JobEvent[]; lastRunnerMark?: number } {
    return this.scan(jobId, 0);
  }

  private scan(jobId: string, fromSeq: number): { events: JobEvent[]; lastRunnerMark?: number } {
    const events: JobEvent[] = [];
    let lastRunnerMark: number | undefined;
    if (!isSafeJobId(jobId)) return { events };
    let text: string;
    try {
      text = fs.readFileSync(this.pathOf(jobId), "utf8");
    } catch {
      return { events };
    }
    for (const line of text.split("\n")) {
      if (line === "") continue;
      try {
        const entry = JSON.parse(line) as JobEvent | { type: "mark"; runnerSeq: number };
        if (entry.type === "mark") lastRunnerMark = entry.runnerSeq;
        else if (entry.type === "event" && entry.seq > fromSeq) events.push(entry);
      } catch {
        // a line torn by a crash mid-write: the events before it still replay
      }
    }
    return { events, lastRunnerMark };
  }
}

export class JournalWriter {
  private fd: number | null;
  private claimed = false;

  constructor(
    file: string,
    private readonly ownerFile?: string,
    { existing = true }: { existing?: boolean } = {},
  ) {
    // "a+": appends go to the end whatever the position given to reads.
    this.fd = fs.openSync(file, existing ? "a+" : "a");
    // A journal taken over from an agent killed mid-write may end in a torn line: end it, so the
    // next event starts a line of its own. (A new job's journal is new: nothing to check.)
    const size = existing ? fs.fstatSync(this.fd).size : 0;
    if (size > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(this.fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) fs.writeSync(this.fd, "\n");
    }
  }

  /** Writes the `.owner` pid file (once): this process is writing the journal. */
  claim(): void {
    if (this.claimed) return;
    this.claimed = true;
    if (this.ownerFile) fs.writeFileSync(this.ownerFile, String(process.pid));
  }

  /** Writes the event, and the runner mark if any, in one write(2) (both or neither survive a kill). */
  append(event: JobEvent, runnerMark?: number): void {
    if (this.fd === null) throw new Error("journal already closed");
    this.claim();
    const mark = runnerMark === undefined ? "" : JSON.stringify({ type: "mark", runnerSeq: runnerMark }) + "\n";
    fs.writeSync(this.fd, JSON.stringify(event) + "\n" + mark);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    if (this.ownerFile && this.claimed) {
      try {
        fs.unlinkSync(this.ownerFile); // (not rmSync: its lstat and path checks cost as much as the unlink, every job)
      } catch {
        // already gone (journal retention)
      }
    }
  }
}

/** Job ids name files: refuse anything that could leave the journal folder. */
export function isSafeJobId(jobId: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(jobId);
}
