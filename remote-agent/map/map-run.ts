/**
 * One %map, on the agent: takes the inputs the client streams in (`map_inputs` windows, held in a
 * bounded queue: the reply to a window waits for room), hands them to the session's workers in
 * adaptive batches (./batch-sizer.ts), and reports each input's final outcome as `map_results`
 * job events (coalesced: a few events a second, not one per input).
 *
 * Failures:
 * - an input whose function raises is retried after a backoff (100 ms, 200 ms, ... up to 5 s)
 *   until `retries` is spent; then its error is its outcome, and the other inputs go on;
 * - a worker that exits has its in-flight inputs redone on the other workers, each alone (so the
 *   input that kills workers is found), and is replaced; an input that kills a worker while
 *   running alone `retries + 2` times fails with WorkerExited;
 * - `fn` missing or not callable, or a worker that cannot replay the session's cells, ends the
 *   map with that error.
 * Interrupt / cancel / timeout (the job's waitAbort) stop dispatch and SIGINT the busy workers;
 * what finished meanwhile is still reported, then the job ends as interrupted / cancelled /
 * timeout. A worker that does not stop within the grace period is killed (the pool replaces it
 * on the next map).
 */
import { setTimeout as delay } from "node:timers/promises";
import { describeExit } from "../backends/types";
import type { Job } from "../agent/job";
import type { Log } from "../agent/log";
import { usageError } from "../agent/errors";
import type { SecretMasker } from "../secrets/masker";
import { formatDuration } from "../agent/session";
import { MAP_MAX_ITEM_BYTES, type MapItemError, type Request } from "../protocol/messages";
import { BatchSizer } from "./batch-sizer";
import { WorkerExited, type MapResults, type MapWorker } from "./worker";
import type { WorkerPool } from "./worker-pool";

export type MapRequest = Extract<Request, { type: "map" }>;

interface Input {
  index: number;
  value: unknown;
  bytes: number;
  /** Times the function raised for it. */
  attempts: number;
  /** Times a worker died while running it alone. */
  soloDeaths: number;
  /** Not before this time (retry backoff). */
  readyAt: number;
}

/** Inputs the agent holds before the reply to a window waits (back-pressure on the client). */
const HELD_ITEMS = 8192;
const HELD_BYTES = 64 * 1024 * 1024;
/** One batch message to a runtime. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** When outcomes go out as one `map_results` event. */
const RESULTS_FLUSH_ITEMS = 16384;
const RESULTS_FLUSH_BYTES = 4 * 1024 * 1024;
const RESULTS_FLUSH_MS = 50;
/** After SIGINT, how long busy workers may take to report before they are killed. */
const STOP_GRACE_MS = 3000;
/** Worker replacements one map may ask for before it gives up on replacing. */
const MAX_REPLACEMENTS = 32;

function backoffMs(attempt: number): number {
  return Math.min(100 * 2 ** (attempt - 1), 5000);
}

/** Size of a value as JSON, exact for strings and containers, cheap for scalars. */
export function jsonBytes(value: unknown): number {
  if (value === undefined || value === null) return 4;
  switch (typeof value) {
    case "number":
      return 8;
    case "boolean":
      return 5;
    case "string":
      return value.length + 2;
    default:
      return JSON.stringify(value)?.length ?? 4;
  }
}

/** A promise that resolves at the next notify(): lets worker loops sleep until something changes. */
class Signal {
  private wake!: () => void;
  private next = this.fresh();
  private fresh(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }
  wait(): Promise<void> {
    return this.next;
  }
  notify(): void {
    this.wake();
    this.next = this.fresh();
  }
}

export class MapRun {
  private readonly fresh: Input[] = [];
  private freshHead = 0;
  private readonly waitingRetry: Input[] = [];
  private readonly solo: Input[] = [];
  private heldBytes = 0;
  private ended = false;
  private received = 0;
  private resolved = 0;
  private stopping = false;
  private over = false;
  /** Outcomes not sent yet: results (parallel arrays) and final errors. */
  private doneIndices: number[] = [];
  private doneValues: unknown[] = [];
  private doneErrors: MapItemError[] = [];
  private outcomeBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly change = new Signal();
  private readonly spaceWaiters: Array<() => void> = [];
  private readonly live = new Set<MapWorker>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly replaced = new Set<MapWorker>();
  /** Per worker: its output passes through a masker of the session's secrets (a worker has their environment). */
  private readonly maskers = new Map<MapWorker, SecretMasker>();
  private replacements = 0;
  private batchNo = 0;
  private finishedResolve!: () => void;
  readonly finished = new Promise<void>((resolve) => (this.finishedResolve = resolve));

  constructor(
    private readonly job: Job,
    private readonly pool: WorkerPool,
    private readonly request: MapRequest,
    readonly workers: number,
    private readonly log: Log,
    /** Sessions that seem to define a function of this name (for the "not defined" error). */
    private readonly sessionsDefining: (fn: string) => string[] = () => [],
  ) {}

  get isOver(): boolean {
    return this.over || this.stopping;
  }

  /** Takes a window of inputs; resolves once the agent has room for the next one. */
  async addInputs(start: number, values: unknown[], end: boolean): Promise<{ held: number; ended: boolean }> {
    if (this.isOver) return { held: 0, ended: true };
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      const bytes = jsonBytes(value);
      if (bytes > MAP_MAX_ITEM_BYTES) {
        throw usageError(`input ${start + i} is ${(bytes / 2 ** 20).toFixed(1)} MiB as JSON, over the %map limit of ${MAP_MAX_ITEM_BYTES / 2 ** 20} MiB per input`);
      }
      this.fresh.push({ index: start + i, value, bytes, attempts: 0, soloDeaths: 0, readyAt: 0 });
      this.heldBytes += bytes;
      this.received++;
    }
    if (end) this.ended = true;
    this.change.notify();
    this.checkDone();
    while (!this.isOver && (this.held() >= HELD_ITEMS || this.heldBytes >= HELD_BYTES)) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    return { held: this.held(), ended: this.isOver };
  }

  /** Runs the map to its end (the job's `done`); never throws. */
  async run(): Promise<void> {
    const signal = this.job.waitAbort.signal;
    const onAbort = () => void this.stop();
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      this.job.stopRequested ??= "timeout";
      this.job.waitAbort.abort();
    }, Math.min(this.request.timeoutMs, 2 ** 31 - 1));
    let release: (() => void) | undefined;
    try {
      const session = this.pool.session.name;
      release = await this.pool.acquire((ahead) => {
        if (ahead > 0) this.job.emit({ kind: "queued", position: ahead, reason: `waiting for the %map ahead in session '${session}'` });
      });
      if (this.isOver) return;
      const workers = await this.pool.ready(this.workers, this.job, signal);
      if (this.isOver) return;
      this.job.emit({ kind: "started", where: `${workers.length} %map worker${workers.length === 1 ? "" : "s"}`, session, gpus: [] });
      for (const worker of workers) this.startDriving(worker);
      await this.finished;
    } catch (error) {
      if (signal.aborted) this.stop();
      else this.end("error", { ename: (error as Error).name || "Error", evalue: (error as Error).message });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      if (!this.over) await this.finished;
      // Batches still running (e.g. a worker that is being killed) must not leak output into the next map.
      await Promise.allSettled([...this.inFlight]);
      release?.();
    }
  }

  // -------------------------------------------------------------------------------------------

  private held(): number {
    return this.fresh.length - this.freshHead;
  }

  /**
   * The client that streams the inputs went away before the last window: the map can never
   * complete, so it is cancelled (what finished is in its journal).
   */
  abandon(): void {
    if (this.ended || this.isOver) return;
    this.log(`map ${this.job.id}: its client left before sending all inputs; cancelling it`);
    this.job.stopRequested ??= "cancelled";
    this.job.waitAbort.abort();
  }

  private startDriving(worker: MapWorker): void {
    this.drive(worker).catch((error: Error) => {
      this.log(`map ${this.job.id}: worker ${worker.number}: ${error.stack ?? error.message}`);
      this.end("error", { ename: "MapError", evalue: `the agent failed running the map on worker ${worker.number}: ${error.message}` });
    });
  }

  /** Keeps up to one (slow inputs) or two (quick inputs) batches on `worker` until the map is over. */
  private async drive(worker: MapWorker): Promise<void> {
    this.live.add(worker);
    // One masker per worker: a value split across two chunks of one worker's stream is still masked,
    // and workers' interleaved output never joins into (or breaks up) a value.
    const masker = this.pool.session.newSecretMasker();
    this.maskers.set(worker, masker);
    worker.output = (name, text) => this.job.stream(name, masker.push(name, text));
    const sizer = new BatchSizer(this.request.batch);
    const outstanding = new Set<Promise<void>>();
    try {
      while (!this.isOver && !worker.dead) {
        while (outstanding.size < this.depth(sizer)) {
          const batch = this.take(sizer);
          if (!batch) break;
          const sent: Promise<void> = this.send(worker, sizer, batch).finally(() => {
            outstanding.delete(sent);
            this.inFlight.delete(sent);
          });
          outstanding.add(sent);
          this.inFlight.add(sent);
        }
        const changed = this.change.wait();
        await (outstanding.size === 0 ? changed : Promise.race([changed, ...outstanding]));
      }
      await Promise.allSettled([...outstanding]);
    } finally {
      this.live.delete(worker);
      worker.output = undefined;
      this.flushOutput(worker);
    }
  }

  /** Releases what a worker's masker held back (the end of its output cannot start a value any more). */
  private flushOutput(worker: MapWorker): void {
    const masker = this.maskers.get(worker);
    if (!masker) return;
    this.maskers.delete(worker);
    for (const name of ["stdout", "stderr"] as const) this.job.stream(name, masker.flush(name));
  }

  /**
   * Batches kept on one worker: two (the next waits in the runtime's inbox, hiding the round
   * trip) for quick inputs, or while plenty of inputs are queued; one near the end of slow
   * inputs, so none waits behind another while a worker idles.
   */
  private depth(sizer: BatchSizer): number {
    return sizer.pipelined || this.held() + this.solo.length + this.waitingRetry.length > 2 * this.live.size ? 2 : 1;
  }

  /** The next batch for a worker, or undefined when nothing is ready. */
  private take(sizer: BatchSizer): Input[] | undefined {
    if (this.isOver) return undefined;
    if (this.solo.length > 0) return [this.solo.shift()!];
    const now = Date.now();
    const readyRetries = this.waitingRetry.filter((item) => item.readyAt <= now);
    const queued = this.held() + readyRetries.length;
    if (queued === 0) {
      this.scheduleRetryWake();
      return undefined;
    }
    const fairShare = this.ended ? Math.ceil(queued / Math.max(1, this.live.size)) : Infinity;
    const size = sizer.next(fairShare);
    const batch: Input[] = [];
    let bytes = 0;
    for (const item of readyRetries) {
      if (batch.length >= size) break;
      batch.push(item);
      bytes += item.bytes;
      this.waitingRetry.splice(this.waitingRetry.indexOf(item), 1);
    }
    while (batch.length < size && this.freshHead < this.fresh.length) {
      const item = this.fresh[this.freshHead];
      if (batch.length > 0 && bytes + item.bytes > MAX_BATCH_BYTES) break;
      batch.push(item);
      bytes += item.bytes;
      this.heldBytes -= item.bytes;
      this.freshHead++;
    }
    if (this.freshHead > 4096 && this.freshHead * 2 > this.fresh.length) {
      this.fresh.splice(0, this.freshHead);
      this.freshHead = 0;
    }
    this.wakeWindows();
    return batch;
  }

  private async send(worker: MapWorker, sizer: BatchSizer, batch: Input[]): Promise<void> {
    let reply: MapResults;
    try {
      reply = await worker.runBatch({
        type: "map_batch",
        id: this.job.id,
        batch: ++this.batchNo,
        fn: this.request.fn,
        indices: batch.map((item) => item.index),
        values: batch.map((item) => item.value),
        maxResultBytes: MAP_MAX_ITEM_BYTES,
      });
    } catch (error) {
      if (error instanceof WorkerExited) return this.onWorkerExited(worker, batch, error);
      throw error;
    }
    sizer.observe(reply.indices.length + reply.errors.length, reply.elapsedMs);
    this.onResults(batch, reply);
  }

  private onResults(batch: Input[], reply: MapResults): void {
    if (reply.fnError) {
      const session = this.pool.session;
      const elsewhere = this.sessionsDefining(this.request.fn).filter((name) => name !== `'${session.name}' (lang=${session.lang})`);
      return this.end("error", {
        ename: reply.fnError.ename,
        evalue:
          `%map ${this.request.fn}: ${reply.fnError.evalue}. %map looked in session '${session.name}' (lang=${session.lang}); ` +
          (elsewhere.length
            ? `session ${elsewhere.join(", ")} defines it: add session=NAME to the %map`
            : "define the function there with a %%remote cell (same session=, lang= and resources) before the %map"),
      });
    }
    const now = Date.now();
    const byIndex = new Map(batch.map((item) => [item.index, item]));
    const { indices, values } = reply;
    for (let i = 0; i < indices.length; i++) {
      if (byIndex.delete(indices[i])) this.resolveValue(indices[i], values[i]);
    }
    for (const failure of reply.errors) {
      const item = byIndex.get(failure.index);
      if (!item) continue;
      byIndex.delete(failure.index);
      item.attempts++;
      if (item.attempts > this.request.retries) {
        const { index, ename, evalue, traceback } = failure;
        this.resolveError({ index, ename, evalue, traceback, attempts: item.attempts, input: item.value });
      } else {
        item.readyAt = now + backoffMs(item.attempts);
        this.waitingRetry.push(item);
        this.scheduleRetryWake();
      }
    }
    // Items a batch did not report (it was interrupted) are not done; outside a stop, redo them.
    if (!this.isOver) for (const item of byIndex.values()) this.solo.push(item);
    this.change.notify();
    this.checkDone();
  }

  private onWorkerExited(worker: MapWorker, batch: Input[], error: WorkerExited): void {
    this.live.delete(worker);
    if (this.isOver) return;
    if (batch.length === 1) {
      const item = batch[0];
      item.soloDeaths++;
      if (item.soloDeaths > this.request.retries + 1) {
        this.resolveError({
          index: item.index,
          ename: "WorkerExited",
          evalue: `the worker running this input exited (${describeExit(error.exit)}), ${item.soloDeaths} times`,
          traceback: [],
          attempts: item.attempts + item.soloDeaths,
          input: item.value,
        });
      } else {
        this.solo.push(item);
      }
    } else {
      this.solo.push(...batch);
    }
    this.replace(worker, error);
    this.change.notify();
    this.checkDone();
  }

  private replace(dead: MapWorker, why: WorkerExited): void {
    if (this.replaced.has(dead)) return;
    this.replaced.add(dead);
    if (++this.replacements > MAX_REPLACEMENTS) {
      this.job.stream("stderr", `[farlab] ${why.message}; not replaced (this %map replaced ${MAX_REPLACEMENTS} workers already)\n`);
      if (this.live.size === 0) this.end("error", { ename: "WorkerExited", evalue: `all %map workers exited; the last: ${why.message}` });
      return;
    }
    this.job.stream("stderr", `[farlab] ${why.message}; its inputs are redone on other workers, and a new worker replaces it\n`);
    this.pool.replace(dead, this.job, this.job.waitAbort.signal).then(
      (worker) => {
        if (worker && !this.isOver) this.startDriving(worker);
        else if (!worker && this.live.size === 0 && !this.isOver) this.end("cancelled");
      },
      (error: Error) => {
        this.log(`map ${this.job.id}: replacing worker ${dead.number} failed: ${error.message}`);
        if (this.live.size === 0 && !this.isOver) this.end("error", { ename: error.name || "WorkerSetupError", evalue: `${why.message}, and a new worker could not start: ${error.message}` });
      },
    );
  }

  private resolveValue(index: number, value: unknown): void {
    this.doneIndices.push(index);
    this.doneValues.push(value ?? null);
    this.resolved++;
    this.outcomeAdded(jsonBytes(value) + 8);
  }

  private resolveError(error: MapItemError): void {
    this.doneErrors.push(error);
    this.resolved++;
    this.outcomeAdded(error.evalue.length + error.traceback.join("\n").length + jsonBytes(error.input) + 64);
  }

  private outcomeAdded(bytes: number): void {
    this.outcomeBytes += bytes;
    if (this.doneIndices.length + this.doneErrors.length >= RESULTS_FLUSH_ITEMS || this.outcomeBytes >= RESULTS_FLUSH_BYTES) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), RESULTS_FLUSH_MS);
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.doneIndices.length + this.doneErrors.length === 0) return;
    const event = { kind: "map_results" as const, indices: this.doneIndices, values: this.doneValues, errors: this.doneErrors };
    this.doneIndices = [];
    this.doneValues = [];
    this.doneErrors = [];
    this.outcomeBytes = 0;
    this.job.emit(event);
  }

  private scheduleRetryWake(): void {
    if (this.retryTimer || this.waitingRetry.length === 0) return;
    const soonest = Math.min(...this.waitingRetry.map((item) => item.readyAt));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.change.notify();
    }, Math.max(0, soonest - Date.now()));
  }

  private wakeWindows(): void {
    if (this.held() < HELD_ITEMS && this.heldBytes < HELD_BYTES) for (const wake of this.spaceWaiters.splice(0)) wake();
  }

  private checkDone(): void {
    if (!this.isOver && this.ended && this.resolved === this.received) this.end("ok");
  }

  /** Interrupt, cancel or timeout: stop dispatching, SIGINT the busy workers, report, end. */
  private async stop(): Promise<void> {
    if (this.isOver) return;
    this.stopping = true;
    this.change.notify();
    for (const wake of this.spaceWaiters.splice(0)) wake();
    const busy = [...this.live].filter((worker) => worker.busy);
    for (const worker of busy) worker.interrupt();
    const grace = new AbortController();
    await Promise.race([Promise.allSettled([...this.inFlight]), delay(STOP_GRACE_MS, undefined, { signal: grace.signal }).catch(() => undefined)]);
    grace.abort();
    for (const worker of busy) {
      if (worker.busy && !worker.dead) {
        this.log(`map ${this.job.id}: worker ${worker.number} did not stop on SIGINT; killing it`);
        this.pool.discard(worker);
      }
    }
    const status = this.job.stopRequested ?? "interrupted";
    this.end(
      status,
      status === "timeout"
        ? { ename: "TimeoutError", evalue: `the %map ran longer than timeout=${formatDuration(this.request.timeoutMs)}; ${this.resolved} of ${this.received} inputs had finished` }
        : undefined,
    );
  }

  private end(status: "ok" | "error" | "interrupted" | "cancelled" | "timeout", error?: { ename: string; evalue: string }): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.retryTimer);
    this.flush();
    for (const worker of [...this.maskers.keys()]) this.flushOutput(worker);
    this.job.finish(status, error);
    for (const wake of this.spaceWaiters.splice(0)) wake();
    this.change.notify();
    this.finishedResolve();
  }
}
