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
import type { MapItemResult, ToRunner } from "../../protocol/runner";
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

/** The result as it will travel (JSON), or an error naming why it cannot. */
function checked(result: MapItemResult, maxBytes: number): MapItemResult {
  const value = result.value;
  if (result.error || value === undefined || value === null || typeof value === "number" || typeof value === "boolean") return result;
  const json = jsonValue(value, "the result");
  if (json.valueError) return { index: result.index, error: { ename: "SerializationError", evalue: json.valueError, traceback: [] } };
  const bytes = typeof value === "string" ? Buffer.byteLength(value) + 2 : Buffer.byteLength(JSON.stringify(json.value));
  if (bytes > maxBytes) {
    const evalue = `the result is ${(bytes / 2 ** 20).toFixed(1)} MiB as JSON, over the %map limit of ${maxBytes / 2 ** 20} MiB per result`;
    return { index: result.index, error: { ename: "ResultTooLarge", evalue, traceback: [] } };
  }
  return { index: result.index, value: json.value };
}

export async function runMapBatch(message: MapBatch, deps: MapBatchDeps): Promise<void> {
  const started = performance.now();
  const reply = (fields: { results: MapItemResult[]; fnError?: { ename: string; evalue: string }; interrupted?: boolean }) =>
    deps.channel.send({ type: "map_results", batch: message.batch, elapsedMs: performance.now() - started, ...fields });

  let fn: (value: unknown) => unknown;
  try {
    fn = lookup(message.fn);
  } catch (error) {
    const e = error as FunctionNotFound;
    return reply({ results: [], fnError: { ename: e.ename ?? "TypeError", evalue: e.message } });
  }

  const results: MapItemResult[] = [];
  const pending: Array<{ slot: MapItemResult; settled: Promise<void>; done: boolean }> = [];
  const scope = globalThis as Record<symbol, unknown>;
  scope[BATCH_BODY] = () => {
    for (const item of message.items) {
      const slot: MapItemResult = { index: item.index };
      try {
        const value = fn(item.value);
        if (isThenable(value)) {
          const entry = { slot, settled: Promise.resolve(), done: false };
          entry.settled = Promise.resolve(value).then(
            (v) => void ((slot.value = v), (entry.done = true)),
            (e: unknown) => void ((slot.error = deps.formatError(e)), (entry.done = true)),
          );
          pending.push(entry);
        } else {
          slot.value = value;
        }
      } catch (error) {
        slot.error = deps.formatError(error);
      }
      results.push(slot);
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

  if (!interrupted && pending.length > 0) {
    const stop = new Promise<"interrupted">((resolve) => deps.interrupts.arm(() => resolve("interrupted")));
    try {
      interrupted = (await Promise.race([Promise.all(pending.map((p) => p.settled)), stop])) === "interrupted";
    } finally {
      deps.interrupts.disarm();
    }
  }
  const unfinished = new Set(pending.filter((p) => !p.done).map((p) => p.slot));
  const finished = unfinished.size ? results.filter((slot) => !unfinished.has(slot)) : results;
  reply({ results: finished.map((slot) => checked(slot, message.maxResultBytes)), ...(interrupted ? { interrupted } : {}) });
}
