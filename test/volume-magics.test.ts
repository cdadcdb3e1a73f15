/**
 * %volume, %secret, volumes= and secrets= end to end: the real kernel (farlab install --prefix),
 * driven by Debian's jupyter_client (test/python/test_volumes.py), with the real embedded agent,
 * its process backend (volumes bind-mounted in a private mount namespace) and Debian's python3
 * (Pillow, numpy) as the remote runtime. The Python driver runs once; each of its tests becomes
 * one subtest here.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { installFarlab, type KernelspecPrefix } from "./helpers/kernelspec";
import { PYTHON_TEST_DIR } from "./helpers/repo";
import { SYSTEM_PYTHON, describeRun, runProgram, type RunResult } from "./helpers/processes";

let spec: KernelspecPrefix;
let scratch: string;
let run: RunResult;
let outcomes: Map<string, string>;

before(async () => {
  spec = await installFarlab("volumes");
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-volumes-test-"));
  run = await runProgram(SYSTEM_PYTHON, [path.join(PYTHON_TEST_DIR, "test_volumes.py")], {
    env: {
      ...spec.env,
      FARLAB_EMBEDDED_AGENT_DIR: path.join(scratch, "agent"),
      FARLAB_PYTHON: SYSTEM_PYTHON,
      FARLAB_TEST_TMP: scratch,
      FARLAB_TEST_FROM_ENV_VALUE: `from-env-${randomBytes(8).toString("hex")}`,
    },
    timeoutMs: 170_000,
  });
  outcomes = new Map();
  for (const match of run.stderr.matchAll(/^(test_\w+) \([\w.]+\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped.*)$/gm)) {
    outcomes.set(match[1], match[2]);
  }
});

after(() => {
  spec?.remove();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const BEHAVIOURS: Record<string, string> = {
  test_put_ls_get_with_progress: "%volume put/ls/list/get/rm: a folder round trips, one byte progress bar to 100%",
  test_escapes_and_bad_arguments_are_usage_errors: "escaping paths and bad arguments are MagicUsageErrors",
  test_cell_writes_into_mounted_volume: "a cell writes into volumes=NAME:/path and %volume get returns it",
  test_image_pipeline: "image pipeline: PNGs put, Pillow+numpy over the mount, results fetched, pixels checked",
  test_secrets_end_to_end: "secrets: password prompts, --from-env, list without values, injected, masked (split too), not in the data dir",
  test_secrets_in_map_output_are_masked: "secrets: what %map workers print is masked too (split across chunks too)",
};

test("the python driver ran to the end", () => {
  assert.ok(!run.timedOut, describeRun("test_volumes.py", run));
  assert.match(run.stderr, /^Ran \d+ tests?/m, describeRun("test_volumes.py", run));
});

for (const [name, behaviour] of Object.entries(BEHAVIOURS)) {
  test(behaviour, () => {
    const outcome = outcomes.get(name);
    assert.equal(outcome, "ok", `${name}: ${outcome ?? "did not run"}\n${describeRun("test_volumes.py", run)}`);
  });
}
