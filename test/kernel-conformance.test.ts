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

async function runUnittest(module: string): Promise<void> {
  const result = await runProgram(SYSTEM_PYTHON, ["-m", "unittest", "-v", module], {
    cwd: PYTHON_TEST_DIR,
    env: { ...spec.env, PYTHONDONTWRITEBYTECODE: "1" },
    timeoutMs: 240_000,
  });
  assert.equal(result.code, 0, describeRun(`python -m unittest ${module}`, result));
  // unittest reports on stderr; the only skip allowed is the pager (farlab has no pager payloads).
  const skipped = [...result.stderr.matchAll(/^(\w+) \([\w.]+\)[^\n]*\.\.\. skipped/gm)].map((m) => m[1]);
  assert.deepEqual(skipped.filter((name) => name !== "test_pager"), [], describeRun(module, result));
}

test("jupyter_kernel_test conformance suite passes", { timeout: 300_000 }, async () => {
  await runUnittest("test_conformance");
});

test("protocol behaviour through jupyter_client", { timeout: 300_000 }, async () => {
  await runUnittest("test_protocol");
});
