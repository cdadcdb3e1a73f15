/**
 * A job: one cell run. It numbers its events (seq 1, 2, 3, ...), writes each to the journal and
 * only then hands it to the connections following it. Following is replay-then-live in one
 * synchronous step (journal read, then subscribe), so a follower sees every event exactly once,
 * in order, however the two race.
 */
import { randomBytes } from "node:crypto";
import type { JobEvent, JobEventBody, JobInfo } from "../protocol/messages";
import type { Journal, JournalWriter } from "./journal";
import { writeJobMeta } from "./ownership";
import { capStreams } from "./stream-cap";

/** How long output may wait to be joined with the next write, and how much may be joined. */
const STREAM_FLUSH_MS = 20;
const MAX_COALESCED_CHARS = 64 * 1024;

export type DoneStatus = Extract<JobEventBody, { kind: "done" }>["status"];
export type Follower = (event: JobEvent) => void;

/** A follower's side of back-pressure (its connection's send queue, ./connection.ts). */
export interface FlowControl {
  congested(): boolean;
  /** Resolves once it is no longer congested (at once if it is not). */
  whenDrained(): Promise<void>;
}

export interface JobRequest {
  /** The user whose job it is (./ownership.ts); absent: no one's (not listed, not attachable). */
  owner?: string;
  code: string;
  inputs: Record<string, unknown>;
  wantValue: boolean;
  timeoutMs: number;
}

/** A job taken over from an agent that died (./agent.ts adoptLeftovers): its journal goes on. */
export interface AdoptedJob {
  id: string;
  createdAt: number;
  startedAt?: number;
  /** The last seq in its journal. */
  lastSeq: number;
}

export class Job {
  readonly id: string;
  readonly createdAt: number;
  startedAt?: number;
  endedAt?: number;
  state: JobInfo["state"] = "queued";
  status?: DoneStatus;
  lastSeq = 0;
  /** Highest seq the client said it rendered. */
  ackedSeq = 0;
  /** Aborted when the job is interrupted or cancelled before it runs (queue, GPU wait). */
  readonly waitAbort = new AbortController();
  /** Set once an interrupt/cancel/timeout was asked for: the status the job will end with. */
  stopRequested?: Exclude<DoneStatus, "ok" | "error">;

  /** The last runner seq (resumable channels) whose content is in the journal. */
  journalledMark?: number;

  private readonly writer: JournalWriter;
  /** Whether the `.owner` and meta files are written (claimFiles). */
  private claimed = false;
  private pendingStream?: { name: "stdout" | "stderr"; text: string; mark?: number };
  private streamTimer?: NodeJS.Timeout;
  private readonly followers = new Set<Follower>();
  /** Flow control of the live followers that have one. */
  private readonly flows = new Set<FlowControl>();
  private readonly finishedPromise: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    readonly session: string,
    readonly request: JobRequest,
    private readonly journal: Journal,
    adopted?: AdoptedJob,
    options: { claimWithFirstEvent?: boolean } = {},
  ) {
    this.id = adopted?.id ?? newJobId();
    this.createdAt = adopted?.createdAt ?? Date.now();
    // The journal itself is made now: a data dir that cannot take it fails the request.
    this.writer = journal.openWriter(this.id, { existing: adopted !== undefined });
    if (adopted) {
      this.writer.claim();
      this.claimed = true; // its meta file is the dead agent's, kept
      this.lastSeq = adopted.lastSeq;
      this.startedAt = adopted.startedAt;
      this.state = "running";
    } else if (!options.claimWithFirstEvent) this.claimFiles();
    this.finishedPromise = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  /**
   * Writes, if not yet, the job's `.owner` pid file and (a job with an owner) its meta file,
   * before its first event. A `run` job (claimWithFirstEvent) has them written with its first
   * event rather than at creation, so that a warm cell's runner is already working while the
   * agent makes them (./session.ts runJob); a session that must start its runtime first calls
   * this before that wait, so the job is listed and attachable from another agent process on
   * this data dir meanwhile.
   */
  claimFiles(): void {
    if (this.claimed) return;
    this.claimed = true;
    this.writer.claim();
    if (this.request.owner) {
      // Whose job it is, beside the journal and before any event (./ownership.ts).
      writeJobMeta(this.journal, this.id, {
        owner: this.request.owner,
        session: this.session,
        codePreview: preview(this.request.code),
        createdAt: this.createdAt,
        timeoutMs: this.request.timeoutMs,
      });
    }
  }

  get done(): boolean {
    return this.state === "done";
  }

  /** Resolves after the `done` event. */
  get finished(): Promise<void> {
    return this.finishedPromise;
  }

  /**
   * Output text, coalesced: writes to the same stream within STREAM_FLUSH_MS become one event
   * (a loop of small prints is not a flood of tiny messages). Any other event, or a switch
   * between stdout and stderr, flushes first, so the order of everything is kept.
   * `runnerMark`: the runner message (seq) this text completes, journalled with it (./journal.ts).
   */
  stream(name: "stdout" | "stderr", text: string, runnerMark?: number): void {
    if (this.done || (text === "" && runnerMark === undefined)) return;
    if (this.pendingStream && this.pendingStream.name !== name) this.flushStream();
    if (this.pendingStream) this.pendingStream.text += text;
    else this.pendingStream = { name, text };
    if (runnerMark !== undefined) this.pendingStream.mark = runnerMark;
    if (this.pendingStream.text.length >= MAX_COALESCED_CHARS) this.flushStream();
    else this.streamTimer ??= setTimeout(() => this.flushStream(), STREAM_FLUSH_MS);
  }

  emit(body: JobEventBody, runnerMark?: number): void {
    if (this.done) return; // nothing follows `done`
    this.flushStream();
    this.append(body, runnerMark);
  }

  /** Journals stream text that waits to be joined with more, now. */
  flush(): void {
    this.flushStream();
  }

  private flushStream(): void {
    clearTimeout(this.streamTimer);
    this.streamTimer = undefined;
    const pending = this.pendingStream;
    this.pendingStream = undefined;
    // (Text the secret masker still holds back has no event yet: its mark waits for the next one.)
    if (pending && pending.text !== "") this.append({ kind: "stream", name: pending.name, text: pending.text }, pending.mark);
  }

  private append(body: JobEventBody, runnerMark?: number): void {
    this.claimFiles();
    const event: JobEvent = { type: "event", jobId: this.id, seq: ++this.lastSeq, time: Date.now(), event: body };
    this.writer.append(event, runnerMark);
    if (runnerMark !== undefined) this.journalledMark = runnerMark;
    if (body.kind === "started") {
      this.state = "running";
      this.startedAt = event.time;
    }
    if (body.kind === "done") {
      this.state = "done";
      this.status = body.status;
      this.endedAt = event.time;
      this.writer.close();
    }
    for (const follow of this.followers) follow(event);
    if (body.kind === "done") {
      this.followers.clear();
      this.flows.clear();
      this.resolveFinished();
    }
  }

  /**
   * Whether a live follower's connection has too much of this job's output queued: the session
   * then stops reading the runtime's output until `whenDrained` (back-pressure to the runtime).
   */
  congested(): boolean {
    for (const flow of this.flows) if (flow.congested()) return true;
    return false;
  }

  /** Resolves when no live follower is congested (followers that leave count as drained). */
  async whenDrained(): Promise<void> {
    for (;;) {
      const congested = [...this.flows].find((flow) => flow.congested());
      if (!congested) return;
      await congested.whenDrained();
    }
  }

  /** Ends the job with `status` (after an optional error event); the elapsed time is measured here. */
  finish(status: DoneStatus, error?: { ename: string; evalue: string }): void {
    if (error) this.emit({ kind: "error", ename: error.ename, evalue: error.evalue, traceback: [] });
    this.emit({ kind: "done", status, elapsedMs: Date.now() - (this.startedAt ?? this.createdAt) });
  }

  /**
   * Replays journalled events with seq > fromSeq, then follows live. Returns the unfollow.
   * `capChars`: stream text past it is not sent to this follower (./stream-cap.ts); `flow`: its
   * connection's back-pressure, which holds the runtime's output while it is congested.
   */
  follow(fromSeq: number, follower: Follower, options: { capChars?: number; flow?: FlowControl } = {}): () => void {
    const { capChars, flow } = options;
    // A capped follower counts stream text from seq 1, so it replays from there and skips.
    const deliver = capChars === undefined ? follower : capStreams(capChars, fromSeq, follower);
    const replayFrom = capChars === undefined ? fromSeq : 0;
    // Nothing to replay (a job followed as it is created, the `run` path): no journal read.
    if (this.lastSeq > replayFrom) for (const event of this.journal.read(this.id, replayFrom)) deliver(event);
    if (this.done) return () => undefined;
    this.followers.add(deliver);
    if (flow) this.flows.add(flow);
    return () => {
      this.followers.delete(deliver);
      if (flow) this.flows.delete(flow);
    };
  }

  get owner(): string | undefined {
    return this.request.owner;
  }

  info(): JobInfo {
    return {
      jobId: this.id,
      session: this.session,
      state: this.state,
      status: this.status,
      startedAt: this.startedAt,
      endedAt: this.endedAt,
      lastSeq: this.lastSeq,
      codePreview: preview(this.request.code),
    };
  }
}

function newJobId(): string {
  return `job-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

function preview(code: string): string {
  const firstLine = code.split("\n").find((line) => line.trim() !== "") ?? "";
  return firstLine.length > 80 ? `${firstLine.slice(0, 77)}...` : firstLine;
}
