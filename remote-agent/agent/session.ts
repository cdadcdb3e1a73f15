/**
 * A session: one long-lived runtime (started by a Backend) that runs its jobs one at a time and
 * keeps their state. It owns
 * - its queue (a job behind others hears `queued` with its position),
 * - its GPUs (allocated when the runtime first starts, kept across runtime restarts, released
 *   when the session stops),
 * - the runtime's lifecycle, including the interrupt escalation: SIGINT to the process group;
 *   if the runner has not finished the job within a grace period, SIGTERM; then SIGKILL. A
 *   runtime that had to be killed is gone with its state; the next job starts a new one.
 */
import { randomBytes } from "node:crypto";
import { setImmediate as nextLoopTurn } from "node:timers/promises";
import { StringDecoder } from "node:string_decoder";
import { describeExit, type Backend, type RuntimeExit, type RuntimeHandle, type SessionSpec } from "../backends/types";
import type { GpuAllocator } from "../gpu/allocator";
import type { GpuDevice } from "../gpu/inventory";
import { parseGpuSpec, type GpuSpec } from "../gpu/spec";
import { JobEventBody, type Lang, type Resources, type SessionInfo } from "../protocol/messages";
import type { FromRunner } from "../protocol/runner";
import type { DoneStatus, Job } from "./job";
import type { Log } from "./log";
import { ReplayLog } from "../map/replay-log";
import { SecretMasker } from "../secrets/masker";
import type { SecretStore } from "../secrets/store";
import type { VolumeStore } from "../volumes/store";

export interface SessionOptions {
  name: string;
  lang: Lang;
  resources: Resources;
  /** Torn down after its one job. */
  fresh: boolean;
  /** The user the session belongs to (./ownership.ts): who may use it, and the backend's labels. */
  owner: string;
  backend: Backend;
  gpus: GpuAllocator;
  log: Log;
  /** How long SIGINT may take before SIGTERM, and SIGTERM before SIGKILL. */
  interruptGraceMs: number;
  terminateGraceMs: number;
  /** Called once the session has stopped (the manager forgets it). */
  onStopped: (session: Session) => void;
  /** Sources of resources.volumes (mounts) and resources.secrets (environment). */
  volumes?: VolumeStore;
  secrets?: SecretStore;
}

/** Resumable channels: acknowledge runner messages in batches of this many. */
const ACK_EVERY = 32;

type Outcome = { kind: "runner"; status: "ok" | "error" | "interrupted" } | { kind: "exited"; exit: RuntimeExit };

interface RunningJob {
  job: Job;
  finished: Promise<Outcome>;
  finish: (outcome: Outcome) => void;
  /** The runtime was killed (SIGTERM/SIGKILL) while running it. */
  killed: boolean;
}

export class Session {
  readonly name: string;
  readonly lang: Lang;
  readonly resources: Resources;
  readonly fresh: boolean;
  readonly owner: string;
  readonly startedAt = Date.now();
  readonly gpuSpec?: GpuSpec;
  cells = 0;
  /** The cells that finished ok since the runtime started: what %map workers replay. */
  readonly replay = new ReplayLog();
  private state: SessionInfo["state"] = "idle";
  private runtime?: RuntimeHandle;
  private starting?: Promise<RuntimeHandle>;
  private gpus: GpuDevice[] = [];
  private readonly queue: Job[] = [];
  private running?: RunningJob;
  /** The job taken off the queue (waiting for GPUs, starting the runtime, or running). */
  private current?: Job;
  private draining = false;
  /** Counts pipe reads, to tell when fd output has stopped arriving. */
  private pipeReads = 0;
  /** The runtime's pipes are paused for back-pressure (holdOutputWhileCongested). */
  private outputHeld = false;
  /** Hides the values of the session's secrets in all its runtime's output, before journalling. */
  private masker = new SecretMasker([]);

  constructor(private readonly options: SessionOptions) {
    this.name = options.name;
    this.lang = options.lang;
    this.resources = options.resources;
    this.fresh = options.fresh;
    this.owner = options.owner;
    // Validated by the manager before the session is made.
    this.gpuSpec = options.resources.gpu ? parseGpuSpec(options.resources.gpu) : undefined;
  }

  get stopped(): boolean {
    return this.state === "stopped";
  }

  info(): SessionInfo {
    return {
      name: this.name,
      lang: this.lang,
      resources: this.resources,
      backend: this.options.backend.name,
      gpus: this.gpus.map(describeGpu),
      state: this.state === "stopped" ? "stopped" : this.running ? "busy" : this.starting ? "starting" : "idle",
      startedAt: this.startedAt,
      cells: this.cells,
    };
  }

  /** Queues a job; it runs after the ones ahead of it. */
  enqueue(job: Job): void {
    this.queue.push(job);
    const ahead = this.queue.length - 1 + (this.current ? 1 : 0);
    if (ahead > 0) {
      job.emit({ kind: "queued", position: ahead, reason: `${plural(ahead, "job")} ahead in session '${this.name}'` });
    }
    void this.drain();
  }

  /**
   * Interrupts (or cancels) a job of this session. A queued job just ends; a job waiting for
   * GPUs stops waiting; a running one goes through the SIGINT/SIGTERM/SIGKILL escalation.
   */
  async stopJob(job: Job, status: "interrupted" | "cancelled" | "timeout"): Promise<void> {
    if (job.done) return;
    job.stopRequested ??= status;
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      job.finish(status);
      this.announcePositions();
      return;
    }
    job.waitAbort.abort(); // GPU wait or runtime start: runJob sees it and ends the job
    if (this.running?.job === job) await this.escalate(this.running);
  }

  /** Ends the session: queued jobs are cancelled, a running one is stopped, GPUs are released. */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopped";
    for (const job of this.queue.splice(0)) job.finish("cancelled");
    const current = this.current;
    if (current) {
      current.stopRequested ??= "cancelled";
      current.waitAbort.abort();
    }
    await this.stopRuntime();
    await current?.finished;
    this.options.gpus.release(this.name);
    this.options.onStopped(this);
    await this.replay.stopped();
    this.options.log(`session ${this.name}: stopped`);
  }

  /** Replaces the runtime (state is lost); queued jobs then run on the new one. */
  async restart(): Promise<void> {
    if (this.running) {
      this.running.job.stopRequested ??= "cancelled";
      this.running.job.waitAbort.abort();
    }
    await this.stopRuntime();
    if (this.running) await this.running.job.finished;
    this.options.log(`session ${this.name}: restarted`);
  }

  // -------------------------------------------------------------------------------------------

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const job = this.queue.shift()!;
        this.current = job;
        this.announcePositions();
        try {
          await this.runJob(job);
        } finally {
          this.current = undefined;
        }
        if (this.fresh) {
          await this.stop();
          break;
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private announcePositions(): void {
    this.queue.forEach((job, i) => {
      const ahead = i + 1;
      job.emit({ kind: "queued", position: ahead, reason: `${plural(ahead, "job")} ahead in session '${this.name}'` });
    });
  }

  private async runJob(job: Job): Promise<void> {
    let runtime: RuntimeHandle;
    // A start takes a while (an image pull, a GPU wait): the job is on disk meanwhile.
    if (!this.runtime) job.claimFiles();
    try {
      runtime = await this.ensureRuntime(job);
    } catch (e) {
      if (job.stopRequested) job.finish(job.stopRequested);
      else job.finish("error", { ename: (e as Error).name || "RuntimeStartError", evalue: (e as Error).message });
      return;
    }
    if (job.stopRequested) return job.finish(job.stopRequested);

    const running = this.beginRunning(job);
    // The runner gets the cell first and runs it while the agent journals `started` (writing the
    // job's owner and meta files, Job.claimFiles): nothing it answers is read before this
    // synchronous step ends, so `started` still comes first, in the journal and to the client.
    runtime.send({ type: "execute", id: job.id, code: job.request.code, inputs: job.request.inputs, wantValue: job.request.wantValue });
    job.emit({ kind: "started", where: runtime.where, session: this.name, gpus: this.gpus.map(describeGpu) });
    await this.superviseRunning(runtime, running, job.request.timeoutMs);
  }

  private beginRunning(job: Job): RunningJob {
    let finish!: (outcome: Outcome) => void;
    const finished = new Promise<Outcome>((resolve) => (finish = resolve));
    const running: RunningJob = { job, finished, finish, killed: false };
    this.running = running;
    this.cells++;
    return running;
  }

  /** Waits for the running job's end (its timer running), then journals its last output and end. */
  private async superviseRunning(runtime: RuntimeHandle, running: RunningJob, timeoutMs: number): Promise<void> {
    const { job } = running;
    // setTimeout fires at once for delays over 2^31-1 ms (24.8 days): cap, not overflow.
    const timer = setTimeout(() => void this.stopJob(job, "timeout"), Math.max(0, Math.min(timeoutMs, 2 ** 31 - 1)));
    try {
      const outcome = await running.finished;
      // The runner's `done` drained the pipes already (above); without a synchronous drain, or
      // after an exit, wait until they have gone quiet.
      if (outcome.kind === "exited" || !runtime.drainOutput()) await this.drainPipes(outcome.kind === "exited");
      for (const source of ["channel", "pipe"] as const) {
        for (const name of ["stdout", "stderr"] as const) job.stream(name, this.masker.flush(maskerKey(source, name)));
      }
      this.endJob(running, outcome);
    } finally {
      clearTimeout(timer);
      this.running = undefined;
    }
  }

  /**
   * Takes over a runtime whose agent died (the Docker backend's containers outlive it): the
   * session's state is the runtime's, and `job`, if the runtime was running it, goes on where
   * the journal left off (the runner sends again what the journal lacks). Its timeout counts
   * from its original start.
   */
  adopt(runtime: RuntimeHandle, gpus: GpuDevice[], job?: Job, timeoutMs?: number): void {
    this.gpus = gpus;
    try {
      this.secretsAndMounts(true); // the masker of its secrets; its volumes counted as mounted again
    } catch (e) {
      this.options.log(`session ${this.name}: adopted without its secrets or volumes: ${(e as Error).message}`);
    }
    if (!job) return this.attachRuntime(runtime);
    this.current = job;
    this.draining = true;
    // Running before the runtime's output is routed: what waited in its FIFOs belongs to the job.
    const running = this.beginRunning(job);
    this.attachRuntime(runtime);
    const left = (timeoutMs ?? 2 ** 31 - 1) - (Date.now() - (job.startedAt ?? job.createdAt));
    void this.superviseRunning(runtime, running, left).finally(() => {
      this.current = undefined;
      this.draining = false;
      void this.drain();
    });
  }

  private endJob(running: RunningJob, outcome: Outcome): void {
    const { job } = running;
    const requested = job.stopRequested;
    const lostState = "; the runtime had to be killed, so the session was restarted and its state is lost";
    if (requested === "timeout") {
      job.finish("timeout", {
        ename: "TimeoutError",
        evalue: `cell exceeded timeout=${formatDuration(job.request.timeoutMs)}${running.killed ? lostState : ""}`,
      });
    } else if (requested) {
      const error =
        requested === "interrupted" && running.killed
          ? { ename: "KeyboardInterrupt", evalue: `the runtime did not stop on SIGINT${lostState}` }
          : undefined;
      job.finish(requested, error);
    } else if (outcome.kind === "runner") {
      if (outcome.status === "ok") this.replay.record({ code: job.request.code, inputs: job.request.inputs });
      job.finish(outcome.status);
    } else if (outcome.exit.error) {
      job.finish("error", outcome.exit.error);
    } else {
      job.finish("error", {
        ename: "RuntimeExitedError",
        evalue: `the ${this.lang} runtime exited (${describeExit(outcome.exit)}) while running the cell; the next cell starts a new runtime, the session's state is lost`,
      });
    }
  }

  private async ensureRuntime(job: Job): Promise<RuntimeHandle> {
    if (this.runtime) return this.runtime;
    if (this.gpuSpec && this.gpus.length === 0) {
      this.gpus = await this.options.gpus.acquire(
        this.name,
        this.gpuSpec,
        (text) => job.emit({ kind: "status", text }),
        job.waitAbort.signal,
      );
    }
    // Slow steps of a start (an image pull) are shown in the cell as status lines.
    const onStatus = (text: string) => job.emit({ kind: "status", text });
    this.starting ??= this.options.backend.startSession({ ...this.runtimeSpec(this.name, this.gpus), onStatus });
    try {
      const runtime = await this.starting;
      this.attachRuntime(runtime);
      return runtime;
    } finally {
      this.starting = undefined;
    }
  }

  private runtimeSpec(name: string, gpus: GpuDevice[]): SessionSpec {
    return {
      id: `${name.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40)}-${randomBytes(4).toString("hex")}`,
      name,
      lang: this.lang,
      resources: this.resources,
      gpus,
      agentHasGpus: this.options.gpus.devices.length > 0,
      owner: this.options.owner,
      ...this.secretsAndMounts(name === this.name),
    };
  }

  /** The runtime's secret environment (also what the masker hides) and its volume mounts. */
  private secretsAndMounts(forSession: boolean): Pick<SessionSpec, "env" | "mounts"> {
    const env = this.options.secrets?.environment(this.resources.secrets ?? []) ?? {};
    const volumes = this.resources.volumes ?? [];
    const mounts = volumes.length > 0 && this.options.volumes ? this.options.volumes.mountsFor(this.name, volumes) : [];
    if (forSession) this.masker = new SecretMasker(Object.values(env)); // replicas: newSecretMasker()
    return { env, mounts };
  }

  /**
   * A masker for output of this session's secrets that does not pass through the session itself
   * (e.g. %map workers started with startReplica, which get the same environment).
   */
  newSecretMasker(): SecretMasker {
    return new SecretMasker(Object.values(this.options.secrets?.environment(this.resources.secrets ?? []) ?? {}));
  }

  /**
   * Starts a replica of this session's runtime (a %map worker): same language and resources, its
   * own GPUs (waited for like a session's; `onWait` hears why), no state. The caller ends it and
   * then calls `release` to free its GPUs.
   */
  async startReplica(
    label: string,
    onWait: (text: string) => void,
    signal: AbortSignal,
  ): Promise<{ runtime: RuntimeHandle; release: () => void }> {
    const holder = `${this.name}/${label}`;
    const gpus = this.gpuSpec ? await this.options.gpus.acquire(holder, this.gpuSpec, onWait, signal) : [];
    const release = () => this.options.gpus.release(holder);
    try {
      return { runtime: await this.options.backend.startSession({ ...this.runtimeSpec(holder, gpus), replica: true }), release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * Back-pressure on the pipes: while a connection following the job has too much queued
   * (./connection.ts), the runtime's stdout/stderr are not read, so it blocks on write instead
   * of the agent buffering without bound. Every event is still journalled, in order.
   */
  private holdOutputWhileCongested(runtime: RuntimeHandle, job: Job): void {
    if (this.outputHeld || !runtime.pauseOutput || !job.congested()) return;
    this.outputHeld = true;
    runtime.pauseOutput();
    void Promise.race([job.whenDrained(), runtime.exited]).then(() => {
      this.outputHeld = false;
      runtime.resumeOutput?.();
    });
  }

  /** Routes the runtime's channel messages and fd output to the running job. */
  private attachRuntime(runtime: RuntimeHandle): void {
    this.runtime = runtime;
    const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
    runtime.onOutput((name, chunk) => {
      this.pipeReads++;
      const text = decoders[name].write(chunk);
      if (text === "") return;
      if (this.running && !this.running.job.done) {
        this.running.job.stream(name, this.masker.push(maskerKey("pipe", name), text));
        // Read from the pipe only now (Docker): journal it before anything else can happen.
        if (runtime.journalOutputAtOnce) this.running.job.flush();
        this.holdOutputWhileCongested(runtime, this.running.job);
      } else this.options.log(`session ${this.name}: ${name} between cells: ${this.masker.mask(text).slice(0, 500)}`);
    });
    let acked = 0;
    // Whether the pipes were drained in this turn of the event loop: a result and the done after
    // it usually arrive in one read (one write of the runner), and the first drain has then
    // already taken everything the cell wrote before either (a drain that finds the pipes empty
    // still costs a failing read(2), with its exception, per pipe).
    let drainedThisTurn = false;
    void (async () => {
      for await (const message of runtime.messages) {
        // Channel messages and pipe output have no common clock: while a cell runs they are
        // taken in the order they arrive. Its result, error and done come after everything the
        // cell's code wrote, so whatever sits in the pipes by then is delivered first.
        if ((message.type === "result" || message.type === "error" || message.type === "done") && !drainedThisTurn) {
          runtime.drainOutput();
          drainedThisTurn = true;
          setImmediate(() => (drainedThisTurn = false));
        }
        this.onRunnerMessage(message);
        if (message.seq !== undefined) acked = this.acknowledge(runtime, message, acked);
        // Back-pressure on the channel too: while the job's client is congested the next message
        // waits (readline then stops reading the socket, and the runner blocks on write).
        const job = this.running?.job;
        if (job?.congested()) await Promise.race([job.whenDrained(), runtime.exited]);
      }
    })()
      .catch((e) => this.options.log(`session ${this.name}: channel failed: ${(e as Error).message}`))
      .finally(async () => {
        const exit = await runtime.exited;
        if (this.runtime === runtime) this.runtime = undefined;
        this.replay.reset();
        this.options.log(`session ${this.name}: runtime exited (${describeExit(exit)})`);
        this.running?.finish({ kind: "exited", exit });
      });
  }

  /**
   * Resumable channels (../protocol/runner.ts): tells the runner which of its messages it may
   * forget. While a job runs, those up to its last journalled runner mark (stream text may wait
   * to be joined, and `done` is journalled only after the pipes are drained); between jobs, all
   * it sent (nothing of them goes to a journal). In batches of ACK_EVERY while a job runs.
   */
  private acknowledge(runtime: RuntimeHandle, message: FromRunner, acked: number): number {
    const job = this.running?.job;
    const safe = job ? (job.journalledMark ?? acked) : message.seq!;
    if (safe > acked && (!job || safe - acked >= ACK_EVERY)) {
      runtime.send({ type: "ack", seq: safe });
      return safe;
    }
    return acked;
  }

  private onRunnerMessage(message: FromRunner): void {
    const running = this.running;
    if (message.type === "ready") return;
    if (!running || message.id !== running.job.id) {
      this.options.log(`session ${this.name}: runner message for no running job: ${message.type}`);
      return;
    }
    const { job } = running;
    if (message.type === "done") return running.finish({ kind: "runner", status: message.status });
    if (message.type === "stream") return job.stream(message.name, this.masker.push(maskerKey("channel", message.name), message.text), message.seq);
    // A stop the agent asked for reports its own error (TimeoutError); the runner's
    // KeyboardInterrupt would only repeat it.
    if (message.type === "error" && (job.stopRequested === "timeout" || job.stopRequested === "cancelled")) return;
    // The runtime runs user code: check what it sends like anything else from outside.
    const body = JobEventBody.safeParse(runnerEventBody(message));
    if (body.success) job.emit(this.masker.mask(body.data), message.seq);
    else this.options.log(`session ${this.name}: dropped a malformed '${message.type}' from the runner: ${body.error.message}`);
  }

  /** SIGINT; if the job is still running after the grace period, SIGTERM; then SIGKILL. */
  private async escalate(running: RunningJob): Promise<void> {
    const runtime = this.runtime;
    if (!runtime) return;
    const { interruptGraceMs, terminateGraceMs } = this.options;
    runtime.interrupt();
    if (await settlesWithin(running.finished, interruptGraceMs)) return;
    if (this.running !== running) return;
    this.options.log(`session ${this.name}: job ${running.job.id} ignored SIGINT; terminating the runtime`);
    running.killed = true;
    await this.killRuntime(runtime);
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves when it has exited. */
  private async killRuntime(runtime: RuntimeHandle): Promise<void> {
    runtime.terminate();
    if (!(await settlesWithin(runtime.exited, this.options.terminateGraceMs))) runtime.kill();
    await runtime.exited;
  }

  /** Asks the runtime to shut down, then escalates; the running job (if any) ends as stopped. */
  private async stopRuntime(): Promise<void> {
    const runtime = this.runtime ?? (this.starting ? await this.starting.catch(() => undefined) : undefined);
    if (!runtime) return;
    if (this.running) this.running.killed = true;
    runtime.send({ type: "shutdown" });
    if (!(await settlesWithin(runtime.exited, this.options.interruptGraceMs))) await this.killRuntime(runtime);
    if (this.runtime === runtime) this.runtime = undefined;
  }

  /**
   * The runner reports `done` over its channel; fd output written before that may still sit in
   * the pipes. Read until a whole event-loop turn brings no more (or, if the runtime exited,
   * a few turns more), so a cell's last lines land before its `done`.
   */
  private async drainPipes(exited: boolean): Promise<void> {
    for (let turns = 0; turns < 200; turns++) {
      const before = this.pipeReads;
      await nextLoopTurn();
      await nextLoopTurn();
      if (this.pipeReads === before && (!exited || turns > 2)) return;
    }
  }
}

/** The job event a runner message stands for (its id and type become the event's kind). */
function runnerEventBody(message: Exclude<FromRunner, { type: "ready" | "done" | "stream" }>): unknown {
  const { id: _id, type, ...fields } = message;
  if (message.type === "progress") {
    const { barId, ...rest } = fields as Omit<typeof message, "id" | "type">;
    return { kind: "progress", id: barId, ...rest };
  }
  return { kind: type, ...fields };
}

function describeGpu(gpu: GpuDevice): string {
  return `GPU ${gpu.index}: ${gpu.name}`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** 90000 -> "90s", 600000 -> "10m", 7200000 -> "2h", 1500 -> "1500ms" (the `timeout=` grammar). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export type { DoneStatus };

/**
 * The masker holds back a possible start of a secret per key. Pipe output (native code,
 * subprocesses) and channel output (print, console.log) have no common clock, so each source has
 * its own key: a value split across two writes of one source is masked even when the other
 * source's output arrives between the halves.
 */
function maskerKey(source: "channel" | "pipe", name: "stdout" | "stderr"): string {
  return `${source}:${name}`;
}
