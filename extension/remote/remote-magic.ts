/**
 * `%%remote [options] [-i a,b] [-o name]`: runs the cell body on an agent (shared/MAGICS.md).
 *
 * The handler plans the run (options + %remote config defaults -> SessionRef), packs -i values,
 * starts the job, renders its events live (JobRenderer) and ends the cell the way the job ended:
 * the remote result bundle as the cell's execute_result (or -o's value), the remote exception
 * under its own ename with the remote traceback, TimeoutError, KeyboardInterrupt.
 * An interrupt of the kernel becomes an `interrupt` request for the job; rendering goes on until
 * the agent reports the job done, so output printed while unwinding is not lost and the session
 * (with its state) survives.
 */
import { formatDuration } from "../../kernel/display/progress";
import { MagicUsageError } from "../magics/errors";
import type { MagicContext, MagicHandler, ParsedMagic } from "../magics/types";
import { agents, type AgentRegistry } from "./agents";
import type { AgentClient, JobStream } from "./agent-client";
import { AgentRequestError, JobCancelledError, KeyboardInterrupt, RemoteError, SerializationError, TimeoutError } from "./errors";
import { JobRenderer, STREAM_LIMIT_CHARS, bundleValue, type JobOutcome } from "./job-renderer";
import { REMOTE_FLAGS, REMOTE_OPTIONS, planRemoteRun, remoteDefaults, type RemoteDefaults } from "./remote-options";

export function createRemoteCellMagic(registry: AgentRegistry = agents, defaults: RemoteDefaults = remoteDefaults): MagicHandler {
  return {
    spec: {
      name: "remote",
      kind: "cell",
      help: "run the cell on an agent (the embedded local agent by default), with live output",
      options: REMOTE_OPTIONS,
      flags: REMOTE_FLAGS,
      acceptsInputs: true,
      acceptsOutput: true,
    },
    run: (magic, ctx) => runRemoteCell(magic, ctx, registry, defaults),
  };
}

async function runRemoteCell(magic: ParsedMagic, ctx: MagicContext, registry: AgentRegistry, defaults: RemoteDefaults): Promise<unknown> {
  // Everything that can be wrong with the cell is found before anything is sent.
  const plan = planRemoteRun(magic, defaults);
  const client = registry.client(plan.agent);
  const inputs = collectInputs(magic.inputs, ctx);
  if (ctx.signal.aborted) throw new KeyboardInterrupt("interrupted before the cell was sent");

  let job: JobStream;
  try {
    job = await client.run({
      session: plan.session,
      code: alignLines(magic),
      inputs,
      wantValue: magic.output !== undefined,
      timeoutMs: plan.timeoutMs,
      // The rest of a flood stays in the agent's journal instead of crossing the link.
      streamCapChars: STREAM_LIMIT_CHARS,
    });
  } catch (error) {
    // The agent refuses what only it can check (e.g. a named session started with other resources).
    if (error instanceof AgentRequestError && error.code === "usage") throw new MagicUsageError(error.message);
    throw error;
  }

  const outcome = await renderWithInterrupt(client, job, ctx);
  return finishJob(outcome, { output: magic.output, timeoutMs: plan.timeoutMs }, client);
}

/** Renders the job; an interrupt of the kernel interrupts the job, and rendering goes on to done. */
async function renderWithInterrupt(client: AgentClient, job: JobStream, ctx: MagicContext): Promise<JobOutcome> {
  const interrupt = () => {
    client.interrupt(job.jobId).catch((error: Error) => ctx.stream("stderr", `farlab: could not interrupt the remote cell: ${error.message}\n`));
  };
  if (ctx.signal.aborted) interrupt();
  else ctx.signal.addEventListener("abort", interrupt, { once: true });
  try {
    return await new JobRenderer(ctx, job.jobId).render(job);
  } finally {
    ctx.signal.removeEventListener("abort", interrupt);
  }
}

/**
 * The cell's value, or the error that ends it. `output`: the -o variable (the JSON value is
 * returned instead of the bundle); `timeoutMs`: the run's timeout, for the TimeoutError's text.
 */
export function finishJob(outcome: JobOutcome, run: { output?: string; timeoutMs?: number }, client: AgentClient): unknown {
  const session = outcome.session ? `session '${outcome.session}'` : "the session";
  switch (outcome.status) {
    case "timeout":
      throw new TimeoutError(
        `the cell ran longer than ${run.timeoutMs ? `timeout=${formatDuration(run.timeoutMs / 1000)}` : "its timeout"} and was stopped on agent '${client.name}'; ` +
          `${session} and its state are kept. Give more time with timeout= (e.g. timeout=2h).`,
      );
    case "interrupted":
      if (outcome.error) throw remoteError(outcome.error);
      throw new KeyboardInterrupt(
        outcome.session ? `the remote cell was interrupted; ${session} and its state are kept` : "the remote cell was interrupted before it started; nothing ran",
      );
    case "cancelled":
      throw new JobCancelledError(`the remote cell was cancelled on agent '${client.name}' before it finished`);
    case "lost":
      // render() only ends without `done` by throwing; this is a protocol slip of the agent.
      throw new JobCancelledError(`agent '${client.name}' ended the job without reporting how it finished`);
    case "error":
    case "ok":
      break;
  }
  if (outcome.error) throw remoteError(outcome.error);
  if (outcome.status === "error") throw new RemoteError("RemoteError", "the remote cell failed without reporting an error", []);

  const result = outcome.result;
  if (run.output !== undefined) {
    if (result?.valueError) {
      throw new SerializationError(`-o ${run.output}: the cell's value cannot be sent back as JSON: ${result.valueError}`);
    }
    // A cell whose last line is a statement has no value: the variable becomes null, as JSON says.
    return result?.value === undefined ? null : result.value;
  }
  return result ? bundleValue(result.data, result.metadata) : undefined;
}

function remoteError(error: { ename: string; evalue: string; traceback: string[] }): RemoteError {
  return new RemoteError(error.ename, error.evalue, error.traceback);
}

/**
 * Pads the body with the lines above it (the magic line), so that line numbers in remote
 * tracebacks are the cell's own line numbers.
 */
function alignLines(magic: ParsedMagic): string {
  const body = magic.body ?? "";
  const above = Math.max(0, (magic.bodyStartLine ?? 2) - 1);
  return "\n".repeat(above) + body;
}

/** -i a,b: the local values, each checked to travel as JSON unchanged. */
function collectInputs(names: string[], ctx: MagicContext): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const name of names) {
    if (!ctx.locals.has(name)) throw new MagicUsageError(`-i ${name}: there is no local variable named '${name}'`);
    const value = ctx.locals.get(name);
    const problem = jsonProblem(value, name);
    if (problem) {
      throw new SerializationError(
        `-i ${name}: ${problem}, which JSON cannot carry; -i sends JSON values only ` +
          "(numbers, strings, booleans, null, arrays and plain objects of them)",
      );
    }
    inputs[name] = value;
  }
  return inputs;
}

/** Why `value` would not survive a JSON round trip unchanged (undefined when it would). */
export function jsonProblem(value: unknown, path: string, seen = new Set<object>()): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${value}`;
    case "undefined":
    case "function":
    case "symbol":
    case "bigint":
      return `${path} is ${typeof value === "function" ? "a function" : typeof value === "undefined" ? "undefined" : `a ${typeof value}`}`;
  }
  if (value === null) return undefined;
  const object = value as object;
  if (seen.has(object)) return `${path} refers back to itself (a cycle)`;
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        const problem = jsonProblem(object[i], `${path}[${i}]`, seen);
        if (problem) return problem;
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      return `${path} is ${describeClass(object)}`;
    }
    for (const [key, item] of Object.entries(object)) {
      const problem = jsonProblem(item, /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, seen);
      if (problem) return problem;
    }
    return undefined;
  } finally {
    seen.delete(object);
  }
}

function describeClass(object: object): string {
  const name = (object.constructor as { name?: string } | undefined)?.name;
  return name ? `a ${name}` : "an object with a custom prototype";
}
