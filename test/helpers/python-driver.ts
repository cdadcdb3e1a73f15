/**
 * Runs one of test/python's unittest drivers against the real kernel and files its verbose
 * lines ("test_name (module.Class...) ... ok") by test name, so that a node test file can make
 * one subtest per Python test: a failure then names the behaviour that broke.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { installFarlab, type KernelspecPrefix } from "./kernelspec";
import { PYTHON_TEST_DIR } from "./repo";
import { SYSTEM_PYTHON, describeRun, runProgram, type RunResult } from "./processes";

export interface DriverRun {
  run: RunResult;
  /** test name -> "ok" | "FAIL" | "ERROR" | "skipped ..." */
  outcomes: Map<string, string>;
}

export interface OutcomeOptions {
  /** Accept one kernel log line ("[farlab ...") between "test_x (...) ..." and its outcome: the
   * kernel's stderr shares the driver's when the driver's output is read as it comes. */
  kernelLogLines?: boolean;
}

/** unittest's verbose lines, "test_name (module.Class...) ... ok", by test name. */
export function parseOutcomes(output: string, options: OutcomeOptions = {}): Map<string, string> {
  const pattern = options.kernelLogLines
    ? /^(test_\w+) \([\w.]+\)(?:\n.*?)? \.\.\. (?:\[farlab.*\n)?(ok|FAIL|ERROR|skipped.*)$/gm
    : /^(test_\w+) \([\w.]+\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped.*)$/gm;
  const outcomes = new Map<string, string>();
  for (const match of output.matchAll(pattern)) outcomes.set(match[1], match[2]);
  return outcomes;
}

export async function runPythonDriver(script: string, env: NodeJS.ProcessEnv, timeoutMs = 170_000): Promise<DriverRun> {
  const run = await runProgram(SYSTEM_PYTHON, [path.join(PYTHON_TEST_DIR, script)], { env, timeoutMs });
  return { run, outcomes: parseOutcomes(run.stderr) };
}

/** One subtest per Python test, named by the behaviour it checks (test name -> behaviour);
 * `report` says what the driver printed, for the failure message. */
export function testEachOutcome(behaviours: Record<string, string>, outcomes: () => Map<string, string>, report: () => string): void {
  for (const [name, behaviour] of Object.entries(behaviours)) {
    test(behaviour, () => {
      const outcome = outcomes().get(name);
      assert.equal(outcome, "ok", `${name}: ${outcome ?? "did not run"}\n${report()}`);
    });
  }
}

export interface KernelDriverSuite {
  /** Label of the temporary kernelspec and of the scratch folder (farlab-<name>-test-*). */
  name: string;
  /** The unittest driver in test/python. */
  script: string;
  /** Environment on top of the suite's own, given the scratch folder (may prepare files in it). */
  env?: (scratch: string) => NodeJS.ProcessEnv;
  /** test name -> the behaviour it checks (the subtest's name). */
  behaviours: Record<string, string>;
}

/**
 * A whole test file around one Python driver: installs the farlab kernelspec, runs the driver
 * once (one kernel start for every check) with the embedded agent's data and FARLAB_TEST_TMP in a
 * scratch folder and Debian's python as the runtime's, then one subtest that the driver ran to the
 * end and one per Python test. Removes the kernelspec and the scratch folder after.
 */
export function kernelDriverSuite(suite: KernelDriverSuite): void {
  let spec: KernelspecPrefix;
  let scratch: string;
  let driver: DriverRun;
  const report = () => describeRun(suite.script, driver.run);

  before(async () => {
    spec = await installFarlab(suite.name);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), `farlab-${suite.name}-test-`));
    driver = await runPythonDriver(suite.script, {
      ...spec.env,
      FARLAB_EMBEDDED_AGENT_DIR: path.join(scratch, "agent"),
      // The runtime's python: Debian's, which has pandas, matplotlib, plotly, Pillow and numpy.
      FARLAB_PYTHON: SYSTEM_PYTHON,
      FARLAB_TEST_TMP: scratch,
      ...suite.env?.(scratch),
    });
  });

  after(() => {
    spec?.remove();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  test("the python driver ran to the end", () => {
    assert.ok(!driver.run.timedOut, report());
    assert.match(driver.run.stderr, /^Ran \d+ tests?/m, report());
  });

  testEachOutcome(suite.behaviours, () => driver.outcomes, report);
}
