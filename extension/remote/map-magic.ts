/**
 * `%map FN INPUTS [options] [-o NAME]`: calls the remote function FN (defined by %%remote cells
 * of a session) on every input, on workers that replicate that session (shared/MAGICS.md,
 * docs/map.md).
 *
 * The kernel side: evaluates INPUTS in the notebook, streams the inputs to the agent in windows
 * (each `map_inputs` reply is the go-ahead for the next window, so a huge or lazy iterable is
 * never all in flight), collects the `map_results` events into the result array, draws one
 * progress bar (done/total, failures, rate, ETA), and renders everything else of the job (worker
 * output, status lines) with the %%remote JobRenderer.
 */
import { inspect } from "node:util";
import { MAP_MAX_ITEM_BYTES, type JobEvent, type JobEventBody, type MapItemError as MapFailure } from "../../remote-agent/protocol/messages";
import type { ProgressBar } from "../../kernel/display/api-types";
import { MagicUsageError } from "../magics/errors";
import type { MagicContext, MagicHandler, OptionSpec, ParsedMagic } from "../magics/types";
import type { AgentClient, JobStream } from "./agent-client";
import { agents, type AgentRegistry } from "./agents";
import { AgentRequestError, CellError, JobCancelledError, KeyboardInterrupt, RemoteError, SerializationError, TimeoutError } from "./errors";
import { JobRenderer, type JobOutcome } from "./job-renderer";
import { jsonProblem } from "./remote-magic";
import { REMOTE_OPTIONS, planRemoteRun, remoteDefaults, type RemoteDefaults } from "./remote-options";

export const MAP_OPTIONS: readonly OptionSpec[] = [
  ...REMOTE_OPTIONS,
  { name: "workers", type: { kind: "int", min: 1, max: 256 }, help: "worker replicas of the session; default: the agent's cores, at most 8" },
  { name: "retries", type: { kind: "int", min: 0, max: 100 }, help: "times a failing input is tried again (with backoff); default 0" },
  { name: "ordered", type: { kind: "bool" }, help: "true: results in input order (default); false: in completion order" },
  { name: "batch", type: { kind: "int", min: 1, max: 100_000 }, help: "inputs per dispatch; default: adaptive" },
];

/** Inputs per `map_inputs` window, and its size as JSON. */
const WINDOW_ITEMS = 2048;
const WINDOW_BYTES = 4 * 1024 * 1024;
/** Failures written to the cell as they happen (the rest are counted on the progress bar). */
const LIVE_FAILURE_LINES = 10;
/** Failures whose tracebacks the cell's error shows. */
const ERROR_TRACEBACKS = 3;

/** The options that fix a session's language and resources. */
const SESSION_SETTINGS = ["lang", "gpu", "cpu", "memory", "image", "backend", "volumes", "secrets"];

const FN_NAME = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

/** One input's failure, as a value (--return-exceptions) in the result array. */
export class MapItemError extends Error {
  constructor(
    ename: string,
    message: string,
    readonly index: number,
    readonly input: unknown,
    readonly traceback: string[],
    readonly attempts: number,
  ) {
    super(message);
    this.name = ename;
    // Shown when the result array is printed: the remote traceback, not the kernel's own frames
    // (which say nothing about the failure). The traceback property stays readable but is left
    // out of util.inspect, which would print it a second time.
    this.stack = [`${ename}: ${message}`, ...traceback.slice(0, -1).map((line) => `    ${line}`)].join("\n");
    Object.defineProperty(this, "traceback", { enumerable: false });
  }
}

/** The cell's error when inputs failed (without --return-exceptions). */
export class MapError extends CellError {
  constructor(message: string, traceback: string[]) {
    super("MapError", message, traceback);
  }
}

export function createMapMagic(registry: AgentRegistry = agents, defaults: RemoteDefaults = remoteDefaults): MagicHandler {
  return {
    spec: {
      name: "map",
      kind: "line",
      help: "call a remote function on every input, on workers that replicate its session",
      options: MAP_OPTIONS,
      flags: [{ name: "return-exceptions", help: "failed inputs become Error values in the result instead of failing the cell" }],
      acceptsOutput: true,
      positionals: [2, 2],
      usage: "FN INPUTS",
    },
    run: (magic, ctx) => runMap(magic, ctx, registry, defaults),
  };
}

function abbreviate(value: unknown): string {
  const text = inspect(value, { depth: 2, breakLength: Infinity, maxArrayLength: 8, maxStringLength: 60 });
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** The inputs as an async iterator, and their count when it is known up front. */
async function openInputs(expression: string, ctx: MagicContext): Promise<{ items: AsyncIterator<unknown> | Iterator<unknown>; total?: number }> {
  const value = await ctx.locals.evaluate(expression);
  if (Array.isArray(value)) return { items: value[Symbol.iterator](), total: value.length };
  if (value !== null && typeof value === "object" || typeof value === "function") {
    const object = value as { [Symbol.asyncIterator]?: () => AsyncIterator<unknown>; [Symbol.iterator]?: () => Iterator<unknown>; size?: unknown };
    if (typeof object[Symbol.asyncIterator] === "function") return { items: object[Symbol.asyncIterator]!() };
    if (typeof object[Symbol.iterator] === "function") {
      return { items: object[Symbol.iterator]!(), total: typeof object.size === "number" ? object.size : undefined };
    }
  }
  if (typeof value === "string") {
    throw new MagicUsageError(`INPUTS ${expression} is a string; %map needs an array or another iterable of inputs (write [${expression}] for one input)`);
  }
  const what = value === null ? "null" : value === undefined ? "undefined" : `a ${typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value}`;
  throw new MagicUsageError(`INPUTS ${expression} is ${what}; %map needs an array or another iterable of inputs (e.g. seeds, [1, 2, 3], (Array.from({length: 100}, (_, i) => i)))`);
}

/** The input's JSON size, or a typed error naming the input. */
function checkInput(value: unknown, index: number): number {
  switch (typeof value) {
    case "number":
      if (Number.isFinite(value)) return 8;
      break;
    case "boolean":
      return 5;
    case "string":
      if (value.length * 3 + 2 <= MAP_MAX_ITEM_BYTES) return value.length + 2;
      break;
  }
  const problem = jsonProblem(value, `input ${index}`);
  if (problem) {
    throw new SerializationError(`%map: ${problem}, which JSON cannot carry; %map inputs are JSON values (numbers, strings, booleans, null, arrays and plain objects of them)`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "null");
  if (bytes > MAP_MAX_ITEM_BYTES) {
    throw new SerializationError(
      `%map: input ${index} is ${(bytes / 2 ** 20).toFixed(1)} MiB as JSON, over the limit of ${MAP_MAX_ITEM_BYTES / 2 ** 20} MiB per input; ` +
        "send a path or a key instead, and let the function read the data (e.g. from a %volume)",
    );
  }
  return bytes;
}

/** Streams the inputs in windows; resolves with how many were sent. */
async function feed(client: AgentClient, jobId: string, inputs: AsyncIterator<unknown> | Iterator<unknown>, signal: AbortSignal): Promise<number> {
  let index = 0;
  for (;;) {
    const start = index;
    const values: unknown[] = [];
    let bytes = 0;
    let end = false;
    while (values.length < WINDOW_ITEMS && bytes < WINDOW_BYTES) {
      const next = await inputs.next();
      if (next.done) {
        end = true;
        break;
      }
      bytes += checkInput(next.value, index++);
      values.push(next.value);
    }
    if (signal.aborted) return index;
    const reply = await client.request({ type: "map_inputs", jobId, start, values, end });
    if (end || reply.ended) return index;
  }
}

/** Collects outcomes into the result array and keeps the progress bar and failure lines current. */
class MapCollector {
  readonly results: unknown[];
  readonly failures: MapFailure[] = [];
  done = 0;
  private bar: ProgressBar | undefined;
  private total: number | undefined;

  constructor(
    private readonly ctx: MagicContext,
    private readonly fn: string,
    total: number | undefined,
    private readonly ordered: boolean,
    private readonly returnExceptions: boolean,
  ) {
    this.total = total;
    this.results = ordered && total !== undefined ? new Array<unknown>(total).fill(undefined) : [];
  }

  start(): void {
    this.bar ??= this.ctx.display.progress({ total: this.total, description: this.fn });
  }

  setTotal(total: number): void {
    this.total = total;
    this.bar?.set(this.done, total);
  }

  add({ indices, values, errors }: Extract<JobEventBody, { kind: "map_results" }>): void {
    this.start();
    this.done += indices.length + errors.length;
    if (this.ordered) for (let i = 0; i < indices.length; i++) this.results[indices[i]] = values[i];
    else for (const value of values) this.results.push(value);
    for (const e of errors) {
      this.failures.push(e);
      const value = this.returnExceptions ? new MapItemError(e.ename, e.evalue, e.index, e.input, e.traceback, e.attempts) : undefined;
      if (this.ordered) this.results[e.index] = value;
      else this.results.push(value);
      if (!this.returnExceptions && this.failures.length <= LIVE_FAILURE_LINES) {
        this.ctx.stream("stderr", `%map ${this.fn}: input ${e.index} (${abbreviate(e.input)}) failed: ${e.ename}: ${e.evalue}\n`);
      }
    }
    const failed = this.failures.length;
    (this.bar as { update?: (state: { description: string }) => void } | undefined)?.update?.({
      description: failed ? `${this.fn} (${plural(failed, "failure")})` : this.fn,
    });
    this.bar?.set(this.done, this.total);
  }

  finish(): void {
    this.bar?.done();
  }
}

async function runMap(magic: ParsedMagic, ctx: MagicContext, registry: AgentRegistry, defaults: RemoteDefaults): Promise<unknown> {
  const [fn, expression] = magic.positionals;
  if (!FN_NAME.test(fn)) {
    throw new MagicUsageError(`%map: '${fn}' is not a function name; FN is the name of a function defined in the remote session (e.g. trial, or tools.score)`);
  }
  if (magic.options.lang === "sh") throw new MagicUsageError("%map needs a function of a lang=python or lang=ts session; bash cells define none");
  // --fresh (even as a %remote config default) has no meaning here: the function lives in a session.
  const plan = planRemoteRun({ options: magic.options, flags: new Set() }, { options: defaults.options, flags: new Set() });
  const ordered = magic.options.ordered !== false;
  const returnExceptions = magic.flags.has("return-exceptions");
  const inputs = await openInputs(expression, ctx);
  if (ctx.signal.aborted) throw new KeyboardInterrupt("interrupted before the %map was sent");

  const client = registry.client(plan.agent);
  let started;
  try {
    started = await client.request({
      type: "map",
      session: plan.session,
      fn,
      sessionSettingsFromName: !SESSION_SETTINGS.some((key) => key in magic.options),
      workers: typeof magic.options.workers === "number" ? magic.options.workers : undefined,
      retries: typeof magic.options.retries === "number" ? magic.options.retries : 0,
      batch: typeof magic.options.batch === "number" ? magic.options.batch : undefined,
      timeoutMs: plan.timeoutMs,
    });
  } catch (error) {
    if (error instanceof AgentRequestError && error.code === "usage") throw new MagicUsageError(error.message);
    throw error;
  }
  const jobId = started.jobId;
  const stream = client.jobStream(jobId);
  const collector = new MapCollector(ctx, fn, inputs.total, ordered, returnExceptions);

  let feedError: unknown;
  const feeding = feed(client, jobId, inputs.items, ctx.signal).then(
    (sent) => {
      if (inputs.total === undefined && !ctx.signal.aborted) collector.setTotal(sent);
      return sent;
    },
    (error: unknown) => {
      feedError = error;
      client.request({ type: "cancel", jobId }).catch(() => undefined);
      return 0;
    },
  );

  const interrupt = () => client.interrupt(jobId).catch((error: Error) => ctx.stream("stderr", `farlab: could not interrupt the %map: ${error.message}\n`));
  if (ctx.signal.aborted) void interrupt();
  else ctx.signal.addEventListener("abort", interrupt, { once: true });
  let outcome: JobOutcome;
  try {
    outcome = await new JobRenderer(ctx, jobId).render(mapEvents(stream, collector));
  } finally {
    ctx.signal.removeEventListener("abort", interrupt);
    collector.finish();
  }
  const sent = await feeding;
  if (feedError) throw feedError;
  return finish(outcome, collector, magic, ctx, fn, inputs.total ?? sent, client);
}

/** The job's events for the renderer, minus `map_results` (collected) ; the bar starts with the job. */
async function* mapEvents(stream: JobStream, collector: MapCollector): AsyncIterable<JobEvent> {
  for await (const event of stream) {
    if (event.event.kind === "map_results") {
      collector.add(event.event);
      continue;
    }
    if (event.event.kind === "started") collector.start();
    yield event;
  }
}

async function finish(
  outcome: JobOutcome,
  collector: MapCollector,
  magic: ParsedMagic,
  ctx: MagicContext,
  fn: string,
  total: number,
  client: AgentClient,
): Promise<unknown> {
  const keepPartial = async () => {
    if (magic.output !== undefined) await ctx.locals.set(magic.output, collector.results);
  };
  const partialNote = magic.output !== undefined ? `; ${magic.output} holds the results that finished (undefined for the others)` : "";
  switch (outcome.status) {
    case "interrupted":
      await keepPartial();
      throw new KeyboardInterrupt(`%map ${fn} was interrupted: ${collector.done} of ${total} inputs completed${partialNote}`);
    case "timeout":
      await keepPartial();
      throw new TimeoutError(`${outcome.error?.evalue ?? `%map ${fn} ran longer than its timeout`}${partialNote}`);
    case "cancelled":
      throw new JobCancelledError(`%map ${fn} was cancelled on agent '${client.name}': ${collector.done} of ${total} inputs completed`);
    case "lost":
      throw new JobCancelledError(`agent '${client.name}' ended the %map without reporting how it finished`);
    case "error":
      if (outcome.error) throw new RemoteError(outcome.error.ename, outcome.error.evalue, outcome.error.traceback.length ? outcome.error.traceback : undefined);
      throw new RemoteError("RemoteError", `%map ${fn} failed without reporting an error`, []);
    case "ok":
      break;
  }
  const failures = [...collector.failures].sort((a, b) => a.index - b.index);
  if (failures.length > 0 && !magic.flags.has("return-exceptions")) {
    await keepPartial();
    const first = failures[0];
    const traceback: string[] = [];
    for (const e of failures.slice(0, ERROR_TRACEBACKS)) {
      traceback.push(`--- input ${e.index} (${abbreviate(e.input)}), ${plural(e.attempts, "attempt")}:`);
      traceback.push(...(e.traceback.length ? e.traceback : [`${e.ename}: ${e.evalue}`]));
    }
    if (failures.length > ERROR_TRACEBACKS) traceback.push(`... and ${failures.length - ERROR_TRACEBACKS} more failed inputs`);
    throw new MapError(
      `${failures.length} of ${total} inputs failed; the first: input ${first.index} (${abbreviate(first.input)}): ` +
        `${first.ename}: ${first.evalue}${partialNote}. --return-exceptions puts the errors in the result instead`,
      traceback,
    );
  }
  return collector.results;
}
