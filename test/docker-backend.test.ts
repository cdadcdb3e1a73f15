/**
 * The Docker backend against the real dockerd, through a real `farlab-agent serve --stdio
 * --backend docker`: cells in farlab-test:latest (no node inside: the agent's is bind-mounted),
 * state across cells, limits on the container, memory kills, interrupts, timeouts, pull errors,
 * GPU device requests and container cleanup (adoption after an agent restart: docker-restart.test.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DockerBackend, PullProgress } from "../remote-agent/backends/docker";
import { AgentHarness, scriptDir, tempDir, withAgent, type AgentOptions } from "./agent-harness";
import { TEST_IMAGE, containersOf, docker, errorOf, requireDocker } from "./docker-helpers";

const DOCKER: AgentOptions = { args: ["--backend", "docker"] };

/** Runs a cell and waits for its end; fails with the agent's log when it does not finish ok. */
async function runOk(agent: AgentHarness, code: string, session: Record<string, unknown>): Promise<string> {
  const jobId = await agent.run(code, session);
  const { status, events } = await agent.done(jobId);
  assert.equal(status, "ok", `cell failed: ${JSON.stringify(errorOf(events))}\n${agent.stderr.join("")}`);
  return agent.stdoutOf(jobId);
}

test("backend auto (the agent's default) uses Docker when its socket answers, and status says so", async () => {
  await requireDocker();
  // The harness pins FARLAB_AGENT_BACKEND=process for other tests; auto is the CLI's default.
  await withAgent({ env: { ...process.env, FARLAB_AGENT_BACKEND: "auto" } }, async (agent) => {
    const status = await agent.ok<{ backend: string }>({ type: "status" });
    assert.equal(status.backend, "docker");
  });
});

test("backend auto without a Docker socket is the process backend", () =>
  withAgent({ env: { ...process.env, FARLAB_AGENT_BACKEND: "auto" }, args: ["--docker-socket", "/nonexistent/docker.sock"] }, async (agent) => {
    const status = await agent.ok<{ backend: string }>({ type: "status" });
    assert.equal(status.backend, "process");
  }));

test("Python and TypeScript cells run in the test image, keep state, and the container carries the limits", async () => {
  await requireDocker();
  await withAgent(DOCKER, async (agent) => {
    try {
      const python = { name: "py", lang: "python", resources: { image: TEST_IMAGE, cpu: 0.5, memoryMiB: 256 } };
      await runOk(agent, "import numpy\nx = 41", python);
      assert.equal(await runOk(agent, "print(x + 1, numpy.__name__)", python), "42 numpy\n");

      const [info] = await containersOf(agent.dataDir, "py");
      assert.ok(info, "the session's container is labelled with the agent's data dir and the session");
      const status = await agent.ok<{ agentId: string }>({ type: "status" });
      assert.equal(info.Labels["farlab.agent-id"], status.agentId);
      assert.ok(info.Labels["farlab.owner"], "labelled with the session's owner");
      const host = (await docker.getContainer(info.Id).inspect()).HostConfig;
      assert.equal(host.NanoCpus, 500_000_000);
      assert.equal(host.Memory, 256 * 1024 * 1024);
      assert.equal(host.MemorySwap, 256 * 1024 * 1024);
      assert.ok((host.PidsLimit ?? 0) > 0);
      assert.ok((host.ShmSize ?? 0) > 0);

      // The image has no node: TypeScript cells run on the agent's, bind-mounted read-only.
      const ts = { name: "ts", lang: "ts", resources: { image: TEST_IMAGE } };
      await runOk(agent, "const y: number = 21;", ts);
      assert.equal(await runOk(agent, "console.log(y * 2)", ts), "42\n");
      const started = agent.received.find((m) => m.type === "event" && m.event.kind === "started" && m.event.session === "ts");
      assert.match(JSON.stringify(started), /container [0-9a-f]{12} \(farlab-test:latest\)/);

      assert.equal((await agent.request({ type: "session_stop", name: "py" })).type, "reply");
      assert.deepEqual(await containersOf(agent.dataDir, "py"), [], "%remote stop removes the container");
      assert.equal((await containersOf(agent.dataDir, "ts")).length, 1);
    } finally {
      await agent.close();
      assert.deepEqual(await containersOf(agent.dataDir), [], "the agent's exit removes its containers");
    }
  });
});

test("a cell killed for memory ends with OutOfMemoryError naming the limit", async () => {
  await requireDocker();
  await withAgent(DOCKER, async (agent) => {
    const session = { name: "small", lang: "python", resources: { image: TEST_IMAGE, memoryMiB: 64 } };
    const jobId = await agent.run("x = b'x' * (512 << 20)", session);
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "error");
    const error = errorOf(events);
    assert.equal(error?.ename, "OutOfMemoryError", JSON.stringify(error));
    assert.match(error!.evalue, /memory=64MiB/);
    // The session goes on with a new container.
    assert.equal(await runOk(agent, "print('alive')", session), "alive\n");
  });
});

test("interrupt reaches the runtime in the container (state kept); timeout= ends a cell", async () => {
  await requireDocker();
  await withAgent(DOCKER, async (agent) => {
    const session = { name: "loop", lang: "python", resources: { image: TEST_IMAGE } };
    await runOk(agent, "x = 5", session);
    const jobId = await agent.run("import time\nprint('looping', flush=True)\nwhile True: time.sleep(0.05)", session);
    await agent.waitForEvent(jobId, (e) => e.kind === "stream" && e.text.includes("looping"));
    assert.equal((await agent.request({ type: "interrupt", jobId })).type, "reply");
    const interrupted = await agent.done(jobId);
    assert.equal(interrupted.status, "interrupted");
    assert.equal(errorOf(interrupted.events)?.ename, "KeyboardInterrupt");
    assert.equal(await runOk(agent, "print(x)", session), "5\n", "SIGINT kept the session's state");

    const slow = await agent.run("import time\ntime.sleep(60)", session, { timeoutMs: 1500 });
    const timedOut = await agent.done(slow);
    assert.equal(timedOut.status, "timeout");
    assert.match(errorOf(timedOut.events)?.evalue ?? "", /cell exceeded timeout=1500ms/);
    assert.equal(await runOk(agent, "print(x)", session), "5\n");

    // TypeScript: a synchronous loop, stopped by SIGINT through docker-init; state kept.
    const ts = { name: "ts-loop", lang: "ts", resources: { image: TEST_IMAGE } };
    await runOk(agent, "const kept = 7;", ts);
    const spin = await agent.run("console.log('spinning'); for (;;) {}", ts);
    await agent.waitForEvent(spin, (e) => e.kind === "stream" && e.text.includes("spinning"));
    assert.equal((await agent.request({ type: "interrupt", jobId: spin })).type, "reply");
    assert.equal((await agent.done(spin)).status, "interrupted");
    assert.equal(await runOk(agent, "console.log(kept)", ts), "7\n");
  });
});

test("an image that is not here and cannot be pulled is a clear error", async () => {
  await requireDocker();
  await withAgent(DOCKER, async (agent) => {
    const jobId = await agent.run("print(1)", { lang: "python", resources: { image: "farlab-no-such-image:1" } });
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "error");
    const error = errorOf(events);
    assert.equal(error?.ename, "RuntimeStartError");
    // Docker Hub says it has no such image; offline, the registry is unreachable: either is said.
    assert.match(error!.evalue, /image farlab-no-such-image:1 not found locally, and pulling it failed: the registry (has no such image|is unreachable)/);
    assert.ok(
      events.some((e) => e.event.kind === "status" && e.event.text === "pulling image farlab-no-such-image:1"),
      "the cell shows that a pull is under way",
    );
  });
});

test("GPUs become a DeviceRequest (driver nvidia, the allocated UUIDs, [[gpu]]) on the created container", async () => {
  await requireDocker();
  const dataDir = tempDir("farlab-docker-gpu-");
  const backend = new DockerBackend({ dataDir });
  const gpu = { index: 2, uuid: "GPU-h100-2222", name: "NVIDIA H100 80GB HBM3", memoryTotalMiB: 81559, memoryUsedMiB: 0 };
  const spec = { id: "gpu-test", name: "gpu", lang: "python" as const, resources: { image: TEST_IMAGE }, gpus: [gpu], agentHasGpus: true };
  // No nvidia runtime here: such a container cannot start, so it is created and inspected only.
  const container = await docker.createContainer(backend.containerOptions(spec, dataDir));
  try {
    const host = (await container.inspect()).HostConfig;
    assert.deepEqual(host.DeviceRequests, [{ Driver: "nvidia", Count: 0, DeviceIDs: ["GPU-h100-2222"], Capabilities: [["gpu"]], Options: null }]);
  } finally {
    await container.remove({ force: true });
  }

  // Through the agent (stand-in nvidia-smi): the start fails without the nvidia runtime, clearly,
  // and leaves no container behind.
  const bin = scriptDir("nvidia-smi", "#!/bin/sh\necho '0, GPU-h100-2222, NVIDIA H100 80GB HBM3, 81559, 0'\n");
  await withAgent({ ...DOCKER, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }, async (agent) => {
    const jobId = await agent.run("print(1)", { lang: "python", resources: { image: TEST_IMAGE, gpu: "H100" } });
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "error");
    assert.equal(errorOf(events)?.ename, "RuntimeStartError");
    assert.match(errorOf(events)!.evalue, /nvidia/);
    assert.deepEqual(await containersOf(agent.dataDir), []);
  });
});

// Containers a killed agent left: adopted or removed (test/docker-restart.test.ts).

test("pull progress counts layers and bytes from the engine's events", () => {
  // The shape of dockerd's pull events (a real pull from a registry: docker-pull.test.ts).
  const progress = new PullProgress("python:3.12-slim");
  for (const event of [
    { status: "Pulling from library/python", id: "3.12-slim" },
    { status: "Pulling fs layer", id: "aaa" },
    { status: "Pulling fs layer", id: "bbb" },
    { status: "Already exists", id: "ccc" },
    { status: "Downloading", id: "aaa", progressDetail: { current: 1_000_000, total: 4_000_000 } },
    { status: "Downloading", id: "bbb", progressDetail: { current: 500_000, total: 1_000_000 } },
  ]) {
    progress.add(event);
  }
  assert.equal(progress.describe(), "pulling image python:3.12-slim: 1/3 layers, 1.5/5.0 MB");
  progress.add({ status: "Download complete", id: "bbb" });
  progress.add({ status: "Pull complete", id: "aaa" });
  progress.add({ status: "Digest: sha256:0123" });
  assert.equal(progress.describe(), "pulling image python:3.12-slim: 3/3 layers, 5.0/5.0 MB");
});
