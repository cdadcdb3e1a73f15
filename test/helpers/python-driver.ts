/**
 * Runs one of test/python's unittest drivers against the real kernel and files its verbose
 * lines ("test_name (module.Class...) ... ok") by test name, so that a node test file can make
 * one subtest per Python test: a failure then names the behaviour that broke.
 */
import { PYTHON_TEST_DIR } from "./repo";
import * as path from "node:path";
import { SYSTEM_PYTHON, runProgram, type RunResult } from "./processes";

export interface DriverRun {
  run: RunResult;
  /** test name -> "ok" | "FAIL" | "ERROR" | "skipped ..." */
  outcomes: Map<string, string>;
}

export async function runPythonDriver(script: string, env: NodeJS.ProcessEnv, timeoutMs = 170_000): Promise<DriverRun> {
  const run = await runProgram(SYSTEM_PYTHON, [path.join(PYTHON_TEST_DIR, script)], { env, timeoutMs });
  const outcomes = new Map<string, string>();
  for (const match of run.stderr.matchAll(/^(test_\w+) \([\w.]+\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped.*)$/gm)) {
    outcomes.set(match[1], match[2]);
  }
  return { run, outcomes };
}
