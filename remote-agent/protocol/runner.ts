/**
 * The runner protocol: between the agent and one runtime process (a session). Newline-delimited
 * JSON over a Unix socket whose path the runtime gets in FARLAB_CHANNEL (the runtime connects).
 * The runtime's fd 1 and fd 2 are pipes read by the agent (fd-level capture of native code and
 * subprocesses); language-level writes (print, console.log) go over the channel as `stream`
 * messages so that they stay in order with displays. Interrupt is SIGINT to the process group.
 *
 * The Python runner (runtimes/python/farlab_runner.py) implements the same messages by hand.
 *
 * Resumable channels (FARLAB_CHANNEL_RESUME=1, set by the Docker backend, whose runtimes outlive
 * the agent): the runner numbers every message after `ready` (`seq` 1, 2, ...) and keeps each
 * until the agent acknowledges it (`ack`: everything up to `seq` is in the journal, or was not
 * meant for one). When the channel drops it keeps running, queues what it sends, and connects
 * again every RECONNECT_INTERVAL until FARLAB_CHANNEL_RESUME_S seconds have passed (then it
 * exits). On reconnect it says `ready` with `resume` (its job, the seq of that job's first
 * message, its last seq); the agent answers `resume` with the last seq it has journalled, and
 * the runner sends again, in order, every message after that one. So each message lands in the
 * journal once even when an agent dies between reading it and journalling it.
 */
export type ToRunner =
  | {
      type: "execute";
      id: string; // the job id
      code: string;
      inputs: Record<string, unknown>;
      wantValue: boolean;
    }
  | {
      /** %map: call the namespace's function `fn` on each item; answered by one `map_results`. */
      type: "map_batch";
      id: string; // the map's job id
      batch: number;
      fn: string;
      /** The inputs: values[i] is input number indices[i]. */
      indices: number[];
      values: unknown[];
      /** A result larger than this as JSON becomes that item's error (ResultTooLarge). */
      maxResultBytes: number;
    }
  | { type: "shutdown" }
  /** Resumable channels: messages up to `seq` are journalled (or not journal-bound); drop them. */
  | { type: "ack"; seq: number }
  /** Resumable channels, after a reconnect: send again every message with seq > `after`. */
  | { type: "resume"; after: number };

/** How often a resumable runner tries to connect again after its channel dropped. */
export const RECONNECT_INTERVAL_MS = 200;

/** What a runner that reconnected says in its `ready`. */
export interface ResumeInfo {
  /** The job it last ran (or runs), if any. */
  job?: string;
  /** The seq of the first message it sent for that job. */
  jobFirstSeq: number;
  /** The seq of the last message it sent. */
  lastSeq: number;
}

/** An input of a batch whose call raised. */
export interface MapItemFailure {
  index: number;
  ename: string;
  evalue: string;
  traceback: string[];
}

/** Every message after `ready` carries `seq` on a resumable channel. */
export type FromRunner = (
  | { type: "ready"; pid: number; lang: "ts" | "python" | "sh"; resume?: ResumeInfo }
  | { type: "stream"; id: string; name: "stdout" | "stderr"; text: string }
  | { type: "display"; id: string; data: Record<string, unknown>; metadata: Record<string, unknown>; displayId?: string }
  | { type: "update_display"; id: string; data: Record<string, unknown>; metadata: Record<string, unknown>; displayId: string }
  | { type: "clear_output"; id: string; wait: boolean }
  | { type: "progress"; id: string; barId: string; n: number; total: number | null; description?: string; closed: boolean }
  | {
      type: "result";
      id: string;
      data: Record<string, unknown>;
      metadata: Record<string, unknown>;
      value?: unknown;
      valueError?: string;
    }
  | { type: "error"; id: string; ename: string; evalue: string; traceback: string[] }
  | { type: "done"; id: string; status: "ok" | "error" | "interrupted" }
  | {
      type: "map_results";
      id: string;
      batch: number;
      /**
       * The inputs that finished (all of them unless `interrupted`): values[i] is the result for
       * input indices[i]; failures are in `errors`.
       */
      indices: number[];
      values: unknown[];
      errors: MapItemFailure[];
      /** Time spent running the batch, for the agent's batch sizing. */
      elapsedMs: number;
      /** `fn` is not defined or not callable: no item ran. */
      fnError?: { ename: string; evalue: string };
      /** SIGINT stopped the batch: items absent from `results` did not finish. */
      interrupted?: boolean;
    }
) & { seq?: number };
