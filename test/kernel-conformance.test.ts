/**
 * The kernel against real Jupyter clients in Python: Debian's jupyter_kernel_test suite
 * (test/python/test_conformance.py) and farlab's protocol tests on jupyter_client
 * (test/python/test_protocol.py), with the kernelspec that `farlab install --prefix` writes.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { installFarlab, type KernelspecPrefix } from "./helpers/kernelspec";
import { SYSTEM_PYTHON, describeRun, runProgram } from "./helpers/processes";
import { PYTHON_TEST_DIR } from "./helpers/repo";

let spec: KernelspecPrefix;

before(async () => {
  spec = await installFarlab("conformance");
});

after(() => spec?.remove());

/** Runs one python test module; returns how many tests (or subtests) it skipped. */
async function runUnittest(module: string): Promise<{ skipped: number; output: string }> {
  const result = await runProgram(SYSTEM_PYTHON, ["-m", "unittest", "-v", module], {
    cwd: PYTHON_TEST_DIR,
    env: { ...spec.env, PYTHONDONTWRITEBYTECODE: "1" },
    timeoutMs: 240_000,
  });
  const report = describeRun(`python -m unittest ${module}`, result);
  assert.equal(result.code, 0, report);
  // unittest's verdict line, e.g. "OK" or "OK (skipped=1)" (the kernel's own log shares stderr).
  const verdict = /^OK(?: \(skipped=(\d+)\))?$/m.exec(result.stderr);
  assert.ok(verdict, report);
  return { skipped: Number(verdict[1] ?? 0), output: report };
}

test("jupyter_kernel_test conformance suite passes", { timeout: 300_000 }, async () => {
  const { skipped, output } = await runUnittest("test_conformance");
  // Only test_pager may skip: farlab has no pager payloads, so code_page_something is empty.
  assert.ok(skipped <= 1, output);
  if (skipped === 1) assert.match(output, /test_pager[^\n]*(\n[^\n]*)?skipped/, output);
});

test("protocol behaviour through jupyter_client", { timeout: 300_000 }, async () => {
  const { skipped, output } = await runUnittest("test_protocol");
  assert.equal(skipped, 0, output);
});
