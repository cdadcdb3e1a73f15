/**
 * What every benchmark entry point shares: its `--name value` options, a temporary farlab
 * kernelspec, one Python driver (Debian's python, bench/*_driver.py) whose last stdout line is its
 * JSON report, the medians of its samples, and how the process ends.
 */
import * as path from "node:path";
import { installFarlab, type KernelspecPrefix } from "../test/helpers/kernelspec";
import { SYSTEM_PYTHON, describeRun, runProgram } from "../test/helpers/processes";
import { REPO_ROOT } from "../test/helpers/repo";

/** The value after `--name` on the command line, or `fallback`. */
export function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] !== undefined ? process.argv[index + 1] : fallback;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface DriverOptions {
  /** Environment on top of the kernelspec's (JUPYTER_PATH). */
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
}

/** The environment that runs `%%remote` and `%map` cells on the embedded agent: Debian's python
 * as the runtime's, the agent's data in the kernelspec's temporary prefix. */
export function embeddedAgentEnv(spec: KernelspecPrefix): NodeJS.ProcessEnv {
  return { FARLAB_PYTHON: SYSTEM_PYTHON, FARLAB_EMBEDDED_AGENT_DIR: path.join(spec.prefix, "agent") };
}

/** Runs bench/`script` with `args`; its report is the last line of its stdout (JSON). */
export async function runDriver<Report>(spec: KernelspecPrefix, script: string, args: string[], options: DriverOptions): Promise<Report> {
  const result = await runProgram(SYSTEM_PYTHON, [path.join(REPO_ROOT, "bench", script), ...args], {
    env: { ...spec.env, ...options.env },
    timeoutMs: options.timeoutMs,
  });
  if (result.code !== 0) throw new Error(describeRun(script, result));
  return JSON.parse(result.stdout.trim().split("\n").pop()!) as Report;
}

/** Installs a farlab kernelspec under a temporary prefix for `body`, and removes it after. */
export async function withFarlab<T>(label: string, body: (spec: KernelspecPrefix) => Promise<T>): Promise<T> {
  const spec = await installFarlab(label);
  try {
    return await body(spec);
  } finally {
    spec.remove();
  }
}

/** Runs a benchmark's main; a failure prints its message (no stack) and exits 1. Exits when main
 * is done, so nothing a benchmark left open (an agent client, a timer) keeps the process alive. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
