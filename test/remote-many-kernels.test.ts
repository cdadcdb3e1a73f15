/**
 * 8 real kernels (jupyter_client, test/python/test_many_kernels.py) run 50 small remote cells
 * each, at the same time, against one ZeroMQ agent (`farlab-agent serve --listen`): every cell
 * gets exactly its own output, none lost, none delivered to another kernel. Cells are tiny
 * (two echo lines in a bash session per kernel) to keep this light on a 2-core machine.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { loadOrCreateKeyPair } from "../remote-agent/keys/keypair";
import { installFarlab } from "./helpers/kernelspec";
import { ListeningAgent } from "./helpers/listening-agent";
import { PYTHON_TEST_DIR } from "./helpers/repo";
import { SYSTEM_PYTHON, describeRun, runProgram } from "./helpers/processes";

const KERNELS = 8;
const CELLS = 50;

test(`${KERNELS} kernels x ${CELLS} remote cells at once against one ZeroMQ agent: no output lost or misdelivered`, async () => {
  const spec = await installFarlab("many-kernels");
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-many-kernels-"));
  const agent = await ListeningAgent.start();
  try {
    const config = path.join(scratch, "config");
    const keys = loadOrCreateKeyPair(config, "client");
    agent.authorize(keys.publicKey, "kernels");
    fs.writeFileSync(
      path.join(config, "agents.json"),
      JSON.stringify({ default: "shared", agents: { shared: { url: agent.url, server_key: agent.serverKey } } }),
    );
    const run = await runProgram(SYSTEM_PYTHON, [path.join(PYTHON_TEST_DIR, "test_many_kernels.py")], {
      env: {
        ...spec.env,
        FARLAB_CONFIG_DIR: config,
        FARLAB_EMBEDDED_AGENT_DIR: path.join(scratch, "embedded"),
        FARLAB_TEST_TIMEOUT: "180",
        FARLAB_T_KERNELS: String(KERNELS),
        FARLAB_T_CELLS: String(CELLS),
      },
      timeoutMs: 400_000,
    });
    const line = run.stdout.trim().split("\n").pop() ?? "";
    let result: { counts: number[]; problems: string[] };
    try {
      result = JSON.parse(line);
    } catch {
      assert.fail(`the driver printed no result\n${describeRun("test_many_kernels.py", run)}`);
    }
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.counts, Array(KERNELS).fill(CELLS));
  } finally {
    await agent.stop();
    spec.remove();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
