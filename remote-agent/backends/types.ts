/**
 * The seam between the agent's sessions and where runtimes run. A backend starts one runtime per
 * session and hands back a RuntimeHandle; the session speaks the runner protocol
 * (../protocol/runner.ts) through it and never needs to know whether the runtime is a local
 * process, a container (docker) or a cluster allocation (slurm).
 */
import type { Lang, Resources } from "../protocol/messages";
import type { FromRunner, ResumeInfo, ToRunner } from "../protocol/runner";
import type { GpuDevice } from "../gpu/inventory";
import type { VolumeMount } from "../volumes/store";

export interface SessionSpec {
  /** Unique per runtime start; names the session's folder. */
  id: string;
  /** The name users see (`%remote sessions`). */
  name: string;
  lang: Lang;
  resources: Resources;
  /** GPUs allocated to this session (exclusive). */
  gpus: GpuDevice[];
  /** Whether the agent has any GPUs at all (a GPU-less session is then hidden from them). */
  agentHasGpus: boolean;
  /** Extra environment of the runtime (the session's secrets). Never to be logged. */
  env?: Record<string, string>;
  /** Volumes the runtime must see at `target` (resources.volumes, resolved by the agent). */
  mounts?: VolumeMount[];
  /** The user the session belongs to (the Docker backend labels its container with it). */
  owner?: string;
  /**
   * A %map worker (Session.startReplica): it lives and dies with its map, so its channel is not
   * resumable and an agent that starts does not adopt it.
   */
  replica?: boolean;
  /** Progress of a slow start (an image pull), for the cell that waits: "pulling X: 2/5 layers". */
  onStatus?: (text: string) => void;
}

export interface RuntimeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why, when the backend knows better than the status (the Docker backend's OOM kill). */
  error?: { ename: string; evalue: string };
}

/** "exit status 1" / "killed by SIGKILL", for messages. */
export function describeExit(exit: RuntimeExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit status ${exit.code}`;
}

export type OutputListener = (name: "stdout" | "stderr", chunk: Buffer) => void;

export interface RuntimeHandle {
  /** Where it runs, for `started` events and status ("process 1234 on host"). */
  readonly where: string;
  readonly pid: number | undefined;
  /**
   * Receives the runtime's fd 1 / fd 2 output (fd-level capture: native code and subprocesses
   * too), in the order read; output from before the call is held and delivered first.
   */
  onOutput(listener: OutputListener): void;
  /**
   * Synchronously delivers what already sits in the output pipes (called before a cell's
   * result/error/done, so everything the cell wrote lands before them). Returns false where the
   * backend cannot (the caller then waits for the pipes to go quiet).
   */
  drainOutput(): boolean;
  /**
   * The output is read only when the session can journal it at once (the Docker backend polls
   * its FIFOs): the session then journals each delivery without coalescing it with later output,
   * so nothing read is lost if the agent is killed (what is not read yet waits in the pipe for
   * the next agent). Absent: output is read as it comes and coalesced for up to 20 ms.
   */
  readonly journalOutputAtOnce?: boolean;
  /**
   * Back-pressure: stop reading the output pipes (the runtime blocks on write once they are
   * full) until resumeOutput. Optional: a backend without it is read as fast as it writes.
   */
  pauseOutput?(): void;
  resumeOutput?(): void;
  send(message: ToRunner): void;
  /** Runner messages after `ready`, in order; ends when the channel closes. */
  readonly messages: AsyncIterable<FromRunner>;
  /** Settles when the runtime has exited. */
  readonly exited: Promise<RuntimeExit>;
  /** SIGINT to the runtime's process group (Python: KeyboardInterrupt; state survives). */
  interrupt(): void;
  /** SIGTERM to the group. */
  terminate(): void;
  /** SIGKILL to the group. */
  kill(): void;
}

export interface Backend {
  readonly name: string;
  /** Starts a runtime and resolves once it has said `ready`; rejects with a message users can read. */
  startSession(spec: SessionSpec): Promise<RuntimeHandle>;
  /**
   * At the agent's start: the runtimes an earlier agent on this data dir left running (it was
   * killed) whose runners reconnected, each waiting for the agent's `resume`; the ones that
   * cannot be taken over are removed. Absent: runtimes die with their agent (process backend).
   */
  adoptLeftovers?(): Promise<LeftoverRuntime[]>;
}

/** A runtime of an earlier agent, reconnected (Backend.adoptLeftovers). */
export interface LeftoverRuntime {
  runtime: RuntimeHandle;
  /** The session it was started for (SessionSpec). */
  name: string;
  lang: Lang;
  resources: Resources;
  owner?: string;
  gpuUuids: string[];
  /** What the runner said when it reconnected: its job, and the seqs to resume from. */
  resume: ResumeInfo;
}

export class RuntimeStartError extends Error {
  override name = "RuntimeStartError";
}
