/**
 * A session's %map workers: started on the first %map, warmed by replaying the session's cells
 * that finished ok (../map/replay-log.ts), kept for later %map calls of the session (which only
 * replay the cells run since), replaced when they die, and stopped with the session. If the
 * session's state was lost (restart, runtime exit) the workers are stale and are started anew.
 * One map uses the pool at a time; a second waits its turn.
 */
import type { Job } from "../agent/job";
import type { Log } from "../agent/log";
import type { Session } from "../agent/session";
import { MapWorker } from "./worker";

/** How long a worker may take to shut down before SIGKILL. */
const STOP_GRACE_MS = 2000;

/** A worker could not be started or warmed: the map fails with this (ename is the class name). */
export class WorkerSetupError extends Error {
  override name = "WorkerSetupError";
}

export class WorkerPool {
  private workers: MapWorker[] = [];
  private generation: number;
  private nextNumber = 1;
  private turn: Promise<void> = Promise.resolve();
  /** Workers being started (a close waits for them, then stops them). */
  private readonly starting = new Set<Promise<unknown>>();
  /** Aborted by close: a worker still waiting for GPUs stops waiting. */
  private readonly closing = new AbortController();
  private waiting = 0;

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  constructor(
    readonly session: Session,
    private readonly log: Log,
  ) {
    this.generation = session.replay.generation;
    session.replay.onStop(() => this.close());
  }

  /** Waits for the pool to be free (telling `onWait` how many maps are ahead); returns the release. */
  async acquire(onWait: (ahead: number) => void): Promise<() => void> {
    const previous = this.turn;
    let release!: () => void;
    this.turn = new Promise((resolve) => (release = resolve));
    this.waiting++;
    onWait(this.waiting - 1);
    await previous;
    this.waiting--;
    return release;
  }

  /** `count` live workers, started and brought up to the session's current state. */
  async ready(count: number, job: Job, signal: AbortSignal): Promise<MapWorker[]> {
    if (this.session.replay.generation !== this.generation) {
      this.log(`session ${this.session.name}: state changed since its %map workers started; replacing them`);
      await this.stopWorkers(this.workers.splice(0));
      this.generation = this.session.replay.generation;
    }
    this.workers = this.workers.filter((worker) => !worker.dead);
    const starting: Array<Promise<MapWorker>> = [];
    for (let i = this.workers.length; i < count; i++) starting.push(this.start(job, signal));
    let ready = 0;
    const status = () => job.emit({ kind: "status", text: `starting %map workers for session '${this.session.name}': ${ready}/${count} ready` });
    if (starting.length > 0) status();
    const chosen = this.workers.slice(0, count);
    const warmed = await Promise.allSettled([
      ...chosen.map((worker) => this.warm(worker, job)),
      ...starting.map(async (started) => {
        const worker = await started;
        this.workers.push(worker);
        await this.warm(worker, job);
        ready++;
        status();
        return worker;
      }),
    ]);
    const failure = warmed.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw failure.reason;
    return warmed.map((r) => (r as PromiseFulfilledResult<MapWorker>).value);
  }

  /** A new warm worker in place of one that died (undefined if the pool has closed meanwhile). */
  async replace(dead: MapWorker, job: Job, signal: AbortSignal): Promise<MapWorker | undefined> {
    this.workers = this.workers.filter((worker) => worker !== dead);
    if (this.closed) return undefined;
    const worker = await this.start(job, signal);
    this.workers.push(worker);
    await this.warm(worker, job);
    return worker;
  }

  /** Ends a worker that did not stop when asked (e.g. ignored SIGINT); the next map starts another. */
  discard(worker: MapWorker): void {
    this.workers = this.workers.filter((w) => w !== worker);
    worker.kill();
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.starting]); // each stops its worker when it sees `closed`
    await this.stopWorkers(this.workers.splice(0));
  }

  private start(job: Job, signal: AbortSignal): Promise<MapWorker> {
    const started = this.startWorker(job, AbortSignal.any([signal, this.closing.signal]));
    this.starting.add(started);
    void started.finally(() => this.starting.delete(started)).catch(() => undefined);
    return started;
  }

  private async startWorker(job: Job, signal: AbortSignal): Promise<MapWorker> {
    if (this.closed) throw new WorkerSetupError(`session '${this.session.name}' has stopped`);
    const number = this.nextNumber++;
    const { runtime, release } = await this.session.startReplica(`map-${number}`, (text) => job.emit({ kind: "status", text: `worker ${number}: ${text}` }), signal);
    const worker = new MapWorker(number, this.generation, runtime, release, this.log);
    if (this.closed) {
      await worker.stop(STOP_GRACE_MS);
      throw new WorkerSetupError(`session '${this.session.name}' has stopped`);
    }
    this.log(`session ${this.session.name}: %map worker ${number} started (${worker.where})`);
    return worker;
  }

  /** Replays the session's cells this worker has not run yet. */
  private async warm(worker: MapWorker, job: Job): Promise<MapWorker> {
    const cells = this.session.replay.cells;
    while (worker.replayed < cells.length) {
      const n = worker.replayed;
      const outcome = await worker.replayCell(cells[n], `${job.id}-replay-${worker.number}-${n + 1}`);
      if (outcome.status !== "ok") {
        const why = outcome.error ? `${outcome.error.ename}: ${outcome.error.evalue}` : outcome.status;
        this.discard(worker);
        throw new WorkerSetupError(
          `worker ${worker.number} could not replay cell ${n + 1} of session '${this.session.name}' (${why}). ` +
            "%map workers start fresh and replay the session's successful cells in order, so each of them must run again " +
            "on a new runtime; `%remote restart` the session and define the function again, or move the setup into the function.",
        );
      }
      worker.replayed++;
    }
    return worker;
  }

  private async stopWorkers(workers: MapWorker[]): Promise<void> {
    await Promise.all(workers.map((worker) => worker.stop(STOP_GRACE_MS)));
  }
}
