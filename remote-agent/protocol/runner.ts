/**
 * The runner protocol: between the agent and one runtime process (a session). Newline-delimited
 * JSON over a Unix socket whose path the runtime gets in FARLAB_CHANNEL (the runtime connects).
 * The runtime's fd 1 and fd 2 are pipes read by the agent (fd-level capture of native code and
 * subprocesses); language-level writes (print, console.log) go over the channel as `stream`
 * messages so that they stay in order with displays. Interrupt is SIGINT to the process group.
 *
 * The Python runner (runtimes/python/farlab_runner.py) implements the same messages by hand.
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
  | { type: "shutdown" };

/** An input of a batch whose call raised. */
export interface MapItemFailure {
  index: number;
  ename: string;
  evalue: string;
  traceback: string[];
}

export type FromRunner =
  | { type: "ready"; pid: number; lang: "ts" | "python" | "sh" }
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
    };
