/**
 * GPUs: spec parsing and matching (units), the allocator's queue (units), and a real agent whose
 * inventory comes from a stand-in `nvidia-smi` on PATH (2x A100 + 1x H100): exclusive
 * allocation, waiting with reasons, interrupting a wait, never-satisfiable specs, and the
 * CUDA_VISIBLE_DEVICES a runtime sees.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GpuAllocator } from "../remote-agent/gpu/allocator";
import { parseNvidiaSmi, type GpuDevice } from "../remote-agent/gpu/inventory";
import { GpuSpecError, describeInventory, everSatisfiable, matchingGpus, parseGpuSpec } from "../remote-agent/gpu/spec";
import type { ErrorReply, GpuInfo } from "../remote-agent/protocol/messages";
import { scriptDir, withAgent, type AgentOptions } from "./agent-harness";

const SMI_OUTPUT = [
  "0, GPU-a100-0000, NVIDIA A100-SXM4-80GB, 81920, 1024",
  "1, GPU-a100-1111, NVIDIA A100-SXM4-80GB, 81920, 0",
  "2, GPU-h100-2222, NVIDIA H100 80GB HBM3, 81559, [N/A]",
].join("\n");
const INVENTORY: GpuDevice[] = parseNvidiaSmi(SMI_OUTPUT);

test("nvidia-smi output is read into an inventory", () => {
  assert.deepEqual(INVENTORY, [
    { index: 0, uuid: "GPU-a100-0000", name: "NVIDIA A100-SXM4-80GB", memoryTotalMiB: 81920, memoryUsedMiB: 1024 },
    { index: 1, uuid: "GPU-a100-1111", name: "NVIDIA A100-SXM4-80GB", memoryTotalMiB: 81920, memoryUsedMiB: 0 },
    { index: 2, uuid: "GPU-h100-2222", name: "NVIDIA H100 80GB HBM3", memoryTotalMiB: 81559, memoryUsedMiB: 0 },
  ]);
  assert.deepEqual(parseNvidiaSmi(""), []);
  assert.equal(describeInventory(INVENTORY), "2x NVIDIA A100-SXM4-80GB, 1x NVIDIA H100 80GB HBM3");
  assert.equal(describeInventory([]), "no GPUs");
});

test("gpu specs: parsing", () => {
  const alts = (text: string) => parseGpuSpec(text).alternatives;
  assert.deepEqual(alts("A100"), [{ name: "a100", count: 1 }]);
  assert.deepEqual(alts("H100:2"), [{ name: "h100", count: 2 }]);
  assert.deepEqual(alts("any"), [{ name: "any", count: 1 }]);
  assert.deepEqual(alts("any:2"), [{ name: "any", count: 2 }]);
  assert.deepEqual(alts("H100|A100"), [{ name: "h100", count: 1 }, { name: "a100", count: 1 }]);
  assert.deepEqual(alts(" h100:2 | a100:4 "), [{ name: "h100", count: 2 }, { name: "a100", count: 4 }]);
  for (const bad of ["", "A100:0", "A100:x", "|", "A100|", "A100:65", ":2", "A1 00:2:3"]) {
    assert.throws(() => parseGpuSpec(bad), (e: unknown) => e instanceof GpuSpecError && /accepted|count/.test(e.message), bad);
  }
});

test("gpu specs: case-insensitive name matching, any, and what can ever be satisfied", () => {
  const [a100] = parseGpuSpec("a100").alternatives;
  assert.deepEqual(matchingGpus(a100, INVENTORY).map((g) => g.index), [0, 1]);
  const [sxm] = parseGpuSpec("SXM4").alternatives;
  assert.deepEqual(matchingGpus(sxm, INVENTORY).map((g) => g.index), [0, 1]);
  const [any] = parseGpuSpec("any").alternatives;
  assert.deepEqual(matchingGpus(any, INVENTORY).map((g) => g.index), [0, 1, 2]);
  assert.ok(everSatisfiable(parseGpuSpec("A100:2"), INVENTORY));
  assert.ok(everSatisfiable(parseGpuSpec("any:3"), INVENTORY));
  assert.ok(everSatisfiable(parseGpuSpec("V100|H100"), INVENTORY));
  assert.ok(!everSatisfiable(parseGpuSpec("A100:3"), INVENTORY));
  assert.ok(!everSatisfiable(parseGpuSpec("V100"), INVENTORY));
  assert.ok(!everSatisfiable(parseGpuSpec("any"), []));
});

test("allocator: exclusive, fallback order, first come first served, and waits that say why", async () => {
  const gpus = new GpuAllocator(INVENTORY);
  const said: Record<string, string[]> = { two: [], three: [], four: [] };
  const one = await gpus.acquire("one", parseGpuSpec("A100"), () => assert.fail("one should not wait"));
  assert.deepEqual(one.map((g) => g.index), [0]);

  const two = gpus.acquire("two", parseGpuSpec("A100:2"), (t) => said.two.push(t));
  assert.deepEqual(said.two, ["waiting for A100:2: held by session 'one'"]);
  // GPU 1 is free, but "two" waits for it: a later A100 request queues behind.
  const abort = new AbortController();
  const three = gpus.acquire("three", parseGpuSpec("A100"), (t) => said.three.push(t), abort.signal);
  assert.deepEqual(said.three, ["waiting for A100: 1 job ahead; held by session 'one'"]);
  // Fallback: no A100 for "four", but the H100 is free and nobody waits for it.
  const four = await gpus.acquire("four", parseGpuSpec("A100|H100"), (t) => said.four.push(t));
  assert.deepEqual(four.map((g) => g.index), [2]);
  assert.deepEqual(said.four, []);

  abort.abort();
  await assert.rejects(three, /cancelled while waiting/);
  gpus.release("one");
  assert.deepEqual((await two).map((g) => g.index), [0, 1]);
  assert.equal(gpus.heldBy("GPU-a100-0000"), "two");
  gpus.release("two");
  assert.equal(gpus.heldBy("GPU-a100-0000"), null);
  assert.match(gpus.neverSatisfiableReason(parseGpuSpec("A100:3")) ?? "", /it has 2x NVIDIA A100-SXM4-80GB, 1x NVIDIA H100 80GB HBM3/);
  assert.equal(gpus.neverSatisfiableReason(parseGpuSpec("H100|A100")), null);
});

/** An agent whose PATH starts with a stand-in nvidia-smi that reports SMI_OUTPUT. */
function gpuAgentOptions(): AgentOptions {
  const bin = scriptDir("nvidia-smi", `#!/bin/sh\ncat <<'EOF'\n${SMI_OUTPUT}\nEOF\n`);
  return { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } };
}

test("agent with GPUs: allocation, waiting status events, interrupting a wait, CUDA_VISIBLE_DEVICES", () =>
  withAgent(gpuAgentOptions(), async (agent) => {
    const status = await agent.ok<{ gpus: GpuInfo[] }>({ type: "status" });
    assert.deepEqual(
      status.gpus.map((g) => [g.index, g.name, g.heldBy]),
      [
        [0, "NVIDIA A100-SXM4-80GB", null],
        [1, "NVIDIA A100-SXM4-80GB", null],
        [2, "NVIDIA H100 80GB HBM3", null],
      ],
    );

    const cuda = "echo $CUDA_VISIBLE_DEVICES";
    const one = await agent.run(cuda, { name: "one", resources: { gpu: "a100" } });
    assert.equal((await agent.done(one)).status, "ok");
    assert.equal(agent.stdoutOf(one), "0\n");
    const started = agent.events(one).find((e) => e.event.kind === "started")?.event;
    assert.deepEqual(started?.kind === "started" && started.gpus, ["GPU 0: NVIDIA A100-SXM4-80GB"]);
    const held = await agent.ok<{ gpus: GpuInfo[] }>({ type: "status" });
    assert.deepEqual(held.gpus.map((g) => g.heldBy), ["one", null, null]);

    // Needs both A100s: waits for session 'one', and says so.
    const two = await agent.run(cuda, { name: "two", resources: { gpu: "A100:2" } });
    const waiting = await agent.waitForEvent(two, (e) => e.kind === "status");
    assert.deepEqual(waiting.event, { kind: "status", text: "waiting for A100:2: held by session 'one'" });
    // Behind it, another A100 job waits too (GPU 1 is free but promised to 'two'); interrupt it.
    const three = await agent.run(cuda, { name: "three", resources: { gpu: "A100" } });
    const behind = await agent.waitForEvent(three, (e) => e.kind === "status");
    assert.deepEqual(behind.event, { kind: "status", text: "waiting for A100: 1 job ahead; held by session 'one'" });
    assert.equal((await agent.request({ type: "interrupt", jobId: three })).type, "reply");
    const interrupted = await agent.done(three);
    assert.equal(interrupted.status, "interrupted");
    assert.ok(!interrupted.events.some((e) => e.event.kind === "started"));

    // Fallback order: the H100 is free.
    const four = await agent.run(cuda, { name: "four", resources: { gpu: "A100|H100" } });
    assert.equal((await agent.done(four)).status, "ok");
    assert.equal(agent.stdoutOf(four), "2\n");

    // A session without GPUs on a GPU agent sees none.
    const cpu = await agent.run("echo \"[$CUDA_VISIBLE_DEVICES]\"", { name: "cpu" });
    assert.equal((await agent.done(cpu)).status, "ok");
    assert.equal(agent.stdoutOf(cpu), "[]\n");

    // Stopping 'one' releases GPU 0: 'two' gets both A100s.
    assert.equal((await agent.request({ type: "session_stop", name: "one" })).type, "reply");
    assert.equal((await agent.done(two)).status, "ok");
    assert.equal(agent.stdoutOf(two), "0,1\n");
    const after = await agent.ok<{ gpus: GpuInfo[] }>({ type: "status" });
    assert.deepEqual(after.gpus.map((g) => g.heldBy), ["two", "two", "four"]);
  }),
);

test("agent with GPUs: a spec it can never satisfy is a usage error listing its GPUs", () =>
  withAgent(gpuAgentOptions(), async (agent) => {
    for (const gpu of ["V100", "A100:3", "any:4"]) {
      const answer = (await agent.request({ type: "run", code: "true", session: { lang: "sh", resources: { gpu } } })) as ErrorReply;
      assert.equal(answer.type, "error", gpu);
      assert.equal(answer.code, "usage", gpu);
      assert.equal(answer.message, `no GPU on this agent can satisfy gpu=${gpu}; it has 2x NVIDIA A100-SXM4-80GB, 1x NVIDIA H100 80GB HBM3`);
    }
    const bad = (await agent.request({ type: "run", code: "true", session: { lang: "sh", resources: { gpu: "A100:0" } } })) as ErrorReply;
    assert.equal(bad.code, "usage");
    assert.match(bad.message, /count must be between 1 and 64/);
    assert.deepEqual((await agent.ok<{ jobs: unknown[] }>({ type: "jobs" })).jobs, [], "no job was made");
  }),
);

test("agent without nvidia-smi: no GPUs, and gpu= says so", () =>
  withAgent({ env: { ...process.env, PATH: "/usr/bin:/bin" } }, async (agent) => {
    const status = await agent.ok<{ gpus: GpuInfo[] }>({ type: "status" });
    assert.deepEqual(status.gpus, []);
    const answer = (await agent.request({ type: "run", code: "true", session: { lang: "sh", resources: { gpu: "any" } } })) as ErrorReply;
    assert.equal(answer.code, "usage");
    assert.equal(answer.message, "no GPU on this agent can satisfy gpu=any; it has no GPUs");
  }),
);
