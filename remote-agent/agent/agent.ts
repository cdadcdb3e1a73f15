/**
 * The agent core: jobs, sessions, GPUs and the journal, served to any number of connections over
 * any Transport. It knows nothing of stdio, SSH or ZeroMQ (see ../protocol/framing.ts).
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend } from "../backends/types";
import type { GpuAllocator } from "../gpu/allocator";
import type { GpuDevice } from "../gpu/inventory";
import type { Transport } from "../protocol/framing";
import type { GpuInfo, JobInfo } from "../protocol/messages";
import { Connection } from "./connection";
import { dispatch, type HandlerTable } from "./dispatcher";
import { createHandlers } from "./handlers";
import { abandonMapsOf } from "../map/handlers";
import { Job, type JobRequest } from "./job";
import { Journal } from "./journal";
import { readJobMeta } from "./ownership";
import type { Log } from "./log";
import type { Session } from "./session";
import { SessionManager } from "./sessions";
import { SecretStore } from "../secrets/store";
import { VolumeStore } from "../volumes/store";
import { TransferManager } from "../volumes/transfers";

export interface AgentOptions {
  dataDir: string;
  backend: Backend;
  gpus: GpuAllocator;
  log: Log;
  /** Re-reads the GPU inventory (fresh memory figures for `status`); absent = keep the first. */
  readGpus?: () => Promise<GpuDevice[]>;
  /** Grace after SIGINT before SIGTERM, and after SIGTERM before SIGKILL. */
  interruptGraceMs?: number;
  terminateGraceMs?: number;
}

/** Done jobs kept in memory for `jobs`; older ones remain attachable through their journal. */
const RECENT_JOBS = 200;

export class Agent {
  readonly id: string;
  readonly version = agentVersion();
  readonly journal: Journal;
  readonly sessions: SessionManager;
  readonly backendName: string;
  readonly volumes: VolumeStore;
  readonly transfers: TransferManager;
  readonly secrets: SecretStore;
  private readonly jobs = new Map<string, { job: Job; session: Session }>();
  private readonly handlers: HandlerTable;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly options: AgentOptions) {
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.id = loadAgentId(options.dataDir);
    this.journal = new Journal(path.join(options.dataDir, "journal"));
    this.backendName = options.backend.name;
    this.volumes = new VolumeStore(options.dataDir, options.log);
    this.transfers = new TransferManager(this.volumes, options.log);
    this.secrets = new SecretStore(options.dataDir, options.log);
    this.sessions = new SessionManager({
      volumes: this.volumes,
      secrets: this.secrets,
      backend: options.backend,
      gpus: options.gpus,
      log: options.log,
      interruptGraceMs: options.interruptGraceMs ?? 5000,
      terminateGraceMs: options.terminateGraceMs ?? 3000,
    });
    this.handlers = createHandlers(this);
  }

  get log(): Log {
    return this.options.log;
  }

  /**
   * Serves one connection; resolves when its incoming side has ended and the requests read so
   * far are answered. The outgoing side stays open: a client that half-closes (stdin EOF) still
   * gets its replies and the events of the jobs it follows, until a send fails.
   */
  async serve(transport: Transport): Promise<void> {
    const connection = new Connection(transport);
    const inFlight = new Set<Promise<void>>();
    for await (const incoming of transport.frames) {
      const handled = dispatch(incoming, connection, this.handlers, this.log);
      inFlight.add(handled);
      void handled.finally(() => inFlight.delete(handled));
    }
    await Promise.allSettled([...inFlight]);
    // Unfinished transfers of this connection leave nothing behind.
    await this.transfers.abortOwnedBy(connection);
    // A %map whose inputs were still streaming from this connection can never complete.
    abandonMapsOf(connection);
  }

  /**
   * Takes over the runtimes an earlier agent on this data dir left running (Backend
   * adoptLeftovers; the Docker backend's containers): each becomes its session again, with its
   * state, and the job it was running goes on in its journal, from where the journal ends: the
   * runner is told to send again every message after the journal's last runner mark (or, with
   * no mark yet, every message of that job). A job the journal has seen end, or none: nothing is
   * sent again. Run before serving clients, so an `attach` finds the job live.
   */
  async adoptLeftovers(): Promise<number> {
    const leftovers = (await this.options.backend.adoptLeftovers?.()) ?? [];
    let adopted = 0;
    for (const left of leftovers) {
      const owner = left.owner ?? "unknown";
      let session: Session;
      try {
        session = this.sessions.adopt(left.name, left.lang, left.resources, owner);
      } catch (e) {
        this.log(`session ${left.name}: not adopted (${(e as Error).message}); its runtime is stopped`);
        left.runtime.kill(); // the backend removes its container once it has exited
        continue;
      }
      const gpus = this.options.gpus.claim(left.name, left.gpuUuids);
      const { job, timeoutMs, lastRunnerMark } = this.adoptJob(left.name, left.resume.job) ?? {};
      const after = job ? (lastRunnerMark ?? left.resume.jobFirstSeq - 1) : left.resume.lastSeq;
      if (job) this.track(job, session);
      session.adopt(left.runtime, gpus, job, timeoutMs);
      left.runtime.send({ type: "resume", after });
      this.log(`session ${left.name}: adopted from an earlier agent${job ? `, job ${job.id} goes on after runner message ${after}` : ""}`);
      adopted++;
    }
    return adopted;
  }

  /** The unfinished job `jobId` of a dead agent, from its journal, or undefined. */
  private adoptJob(sessionName: string, jobId: string | undefined): { job: Job; timeoutMs?: number; lastRunnerMark?: number } | undefined {
    const meta = jobId ? readJobMeta(this.journal, jobId) : undefined;
    if (!jobId || !meta) return undefined;
    const { events, lastRunnerMark } = this.journal.readForResume(jobId);
    if (events.length === 0 || events.some((e) => e.event.kind === "done")) return undefined;
    const started = events.find((e) => e.event.kind === "started");
    const request: JobRequest = { owner: meta.owner, code: meta.codePreview, inputs: {}, wantValue: false, timeoutMs: meta.timeoutMs ?? 2 ** 31 - 1 };
    const job = new Job(sessionName, request, this.journal, {
      id: jobId,
      createdAt: meta.createdAt,
      startedAt: started?.time,
      lastSeq: events[events.length - 1].seq,
    });
    return { job, timeoutMs: meta.timeoutMs, lastRunnerMark };
  }

  /** Makes a job in `session`; it is queued by the caller once the client knows its id. */
  createJob(session: Session, request: JobRequest, options: { claimWithFirstEvent?: boolean } = {}): Job {
    // A job belongs to its session's user (./ownership.ts), whichever handler made it.
    const job = new Job(session.name, { ...request, owner: request.owner ?? session.owner }, this.journal, undefined, options);
    this.track(job, session);
    return job;
  }

  private track(job: Job, session: Session): void {
    this.jobs.set(job.id, { job, session });
    void job.finished.then(() => {
      this.forgetOldJobs();
      if (this.activeJobs() === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
    });
  }

  findJob(jobId: string): { job: Job; session: Session } | undefined {
    return this.jobs.get(jobId);
  }

  /** The owner's jobs in memory. */
  jobInfos(owner: string): JobInfo[] {
    return [...this.jobs.values()].filter(({ job }) => job.owner === owner).map(({ job }) => job.info());
  }

  async gpuInfos(): Promise<GpuInfo[]> {
    if (this.options.readGpus) this.options.gpus.updateInventory(await this.options.readGpus());
    return this.options.gpus.devices.map((gpu) => ({ ...gpu, heldBy: this.options.gpus.heldBy(gpu.uuid) }));
  }

  /** Resolves when no job is queued or running. */
  whenIdle(): Promise<void> {
    if (this.activeJobs() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async shutdown(): Promise<void> {
    await this.sessions.stopAll();
  }

  private activeJobs(): number {
    return [...this.jobs.values()].filter(({ job }) => !job.done).length;
  }

  private forgetOldJobs(): void {
    const done = [...this.jobs.values()].filter(({ job }) => job.done);
    for (const { job } of done.slice(0, Math.max(0, done.length - RECENT_JOBS))) this.jobs.delete(job.id);
  }
}

export function loadAgentId(dataDir: string): string {
  const file = path.join(dataDir, "agent-id");
  try {
    const id = fs.readFileSync(file, "utf8").trim();
    if (id) return id;
  } catch {
    // first start
  }
  const id = randomUUID();
  fs.writeFileSync(file, id + "\n");
  return id;
}

/** The farlab package's version, found by walking up from this file (works from dist/ and bundles). */
function agentVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "farlab" && pkg.version) return pkg.version;
    } catch {
      // not here
    }
    if (path.dirname(dir) === dir) return "0.0.0";
  }
}
