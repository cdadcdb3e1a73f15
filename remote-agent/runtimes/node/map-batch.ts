/**
 * %map batches in the TypeScript runtime: call a function of the session (a global, as cells
 * declare them) on each item of a `map_batch` and answer with one `map_results`
 * (protocol: ../../protocol/runner.ts).
 *
 * The synchronous part of the batch (every call, and the whole of a synchronous function) runs
 * inside one vm script with breakOnSigint, so an interrupt stops even a `while (true) {}` in the
 * function; promises the calls return are then awaited together, raced against SIGINT.
 */
import { performance } from "node:perf_hooks";
import * as vm from "node:vm";
import type { MapItemFailure, ToRunner } from "../../protocol/runner";
import type { RunnerChannel } from "./channel";
import { jsonValue, type CellError } from "./errors";
import type { InterruptSource } from "./interrupt";

type MapBatch = Extract<ToRunner, { type: "map_batch" }>;

const BATCH_BODY = Symbol.for("farlab.mapBatchBody");
/** The one script a batch runs in: it calls the body the runner put on globalThis. */
const RUN_BODY = new vm.Script(`globalThis[Symbol.for("farlab.mapBatchBody")]()`, { filename: "farlab-map-batch" });

export interface MapBatchDeps {
  channel: RunnerChannel;
  interrupts: InterruptSource;
  formatError(error: unknown): CellError;
}

class FunctionNotFound extends Error {
  constructor(
    readonly ename: string,
    message: string,
  ) {
    super(message);
  }
}

/** The function `name` names: a global of the session, or a dotted path from one. */
function lookup(name: string): (value: unknown) => unknown {
  const [head, ...rest] = name.split(".");
  const scope = globalThis as Record<string, unknown>;
  if (!(head in scope)) throw new FunctionNotFound("ReferenceError", `${head} is not defined in the session`);
  let value: unknown = scope[head];
  for (const part of rest) value = (value as Record<string, unknown> | null | undefined)?.[part];
  if (typeof value !== "function") {
    throw new FunctionNotFound("TypeError", `'${name}' is ${value === null ? "null" : typeof value}, not a function`);
  }
  return value as (value: unknown) => unknown;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function";
}

type Failure = MapItemFailure;

/** The result as it will travel (JSON), or the error that stands for it. */
function checked(index: number, value: unknown, maxBytes: number): { value: unknown } | { failure: Failure } {
  if (value === undefined || value === null || typeof value === "number" || typeof value === "boolean") return { value: value ?? null };
  const json = jsonValue(value, "the result");
  if (json.valueError) return { failure: { index, ename: "SerializationError", evalue: json.valueError, traceback: [] } };
  const bytes = typeof value === "string" ? Buffer.byteLength(value) + 2 : Buffer.byteLength(JSON.stringify(json.value));
  if (bytes > maxBytes) {
    const evalue = `the result is ${(bytes / 2 ** 20).toFixed(1)} MiB as JSON, over the %map limit of ${maxBytes / 2 ** 20} MiB per result`;
    return { failure: { index, ename: "ResultTooLarge", evalue, traceback: [] } };
  }
  return { value: json.value };
}

interface Slot {
  index: number;
  value?: unknown;
  failure?: Failure;
  /** A promise the call returned, not yet settled. */
  pending?: boolean;
}

export async function runMapBatch(message: MapBatch, deps: MapBatchDeps): Promise<void> {
  const started = performance.now();
  const indices: number[] = [];
  const values: unknown[] = [];
  const errors: Failure[] = [];
  const reply = (extra: { fnError?: { ename: string; evalue: string }; interrupted?: boolean } = {}) =>
    deps.channel.send({ type: "map_results", batch: message.batch, indices, values, errors, elapsedMs: performance.now() - started, ...extra });

  let fn: (value: unknown) => unknown;
  try {
    fn = lookup(message.fn);
  } catch (error) {
    const e = error as FunctionNotFound;
    return reply({ fnError: { ename: e.ename ?? "TypeError", evalue: e.message } });
  }

  const slots: Slot[] = [];
  const settling: Array<Promise<void>> = [];
  const failure = (index: number, error: unknown): Failure => ({ index, ...deps.formatError(error) });
  const scope = globalThis as Record<symbol, unknown>;
  scope[BATCH_BODY] = () => {
    const inputs = message.values;
    for (let i = 0; i < inputs.length; i++) {
      const slot: Slot = { index: message.indices[i] };
      try {
        const value = fn(inputs[i]);
        if (isThenable(value)) {
          slot.pending = true;
          settling.push(
            Promise.resolve(value).then(
              (v) => void ((slot.value = v), (slot.pending = false)),
              (e: unknown) => void ((slot.failure = failure(slot.index, e)), (slot.pending = false)),
            ),
          );
        } else {
          slot.value = value;
        }
      } catch (error) {
        slot.failure = failure(slot.index, error);
      }
      slots.push(slot);
    }
  };

  let interrupted = false;
  try {
    RUN_BODY.runInThisContext({ breakOnSigint: true });
  } catch (error) {
    if ((error as { code?: string })?.code !== "ERR_SCRIPT_EXECUTION_INTERRUPTED") throw error;
    interrupted = true;
  } finally {
    delete scope[BATCH_BODY];
  }

  if (!interrupted && settling.length > 0) {
    const stop = new Promise<"interrupted">((resolve) => deps.interrupts.arm(() => resolve("interrupted")));
    try {
      interrupted = (await Promise.race([Promise.all(settling), stop])) === "interrupted";
    } finally {
      deps.interrupts.disarm();
    }
  }
  for (const slot of slots) {
    if (slot.pending) continue; // interrupted before its promise settled: not done
    if (slot.failure) {
      errors.push(slot.failure);
      continue;
    }
    const result = checked(slot.index, slot.value, message.maxResultBytes);
    if ("failure" in result) {
      errors.push(result.failure);
    } else {
      indices.push(slot.index);
      values.push(result.value);
    }
  }
  reply(interrupted ? { interrupted } : {});
}
