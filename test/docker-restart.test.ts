/**
 * A job survives a restart of its agent (Docker backend): a real `farlab-agent serve --listen`
 * (ZeroMQ, CURVE) runs cells in containers of the test image for a real AgentClient; the agent
 * is killed (SIGKILL) while the cells print, and started again on the same data dir and port. The
 * new agent adopts the containers (their runtimes reconnect to their channels and resume after
 * the journal's last runner mark; fd output waiting in their FIFOs is read then), the client
 * reconnects and resumes from its last seq, and each cell finishes with every line exactly once
 * and in order, both what went over the runner's channel and what was written to fd 1; the
 * sessions keep their state.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { AgentClient, type JobStream } from "../extension/remote/agent-client";
import { clientKeyPair } from "../extension/transports/client-keys";
import { connectZmq } from "../extension/transports/zmq";
import { AgentHarness } from "./agent-harness";
import { TEST_IMAGE, containersOf, docker, removeContainersOf, requireDocker } from "./docker-helpers";
import { ListeningAgent } from "./helpers/listening-agent";
import { freePort } from "./helpers/ports";

const LINES = 60;

/** Reads a job to its end: its stdout text, its status, and whether the link was resumed. */
async function readJob(stream: JobStream, onText: (text: string) => void = () => undefined) {
  let stdout = "";
  let status: string | undefined;
  let error: unknown;
  const links: string[] = [];
  stream.onLink((link) => links.push(link.state));
  for await (const event of stream) {
    if (event.event.kind === "stream" && event.event.name === "stdout") {
      stdout += event.event.text;
      onText(stdout);
    }
    if (event.event.kind === "error") error = event.event;
    if (event.event.kind === "done") status = event.event.status;
  }
  return { stdout, status, error, links };
}

function expectedLines(prefix: string): string[] {
  return Array.from({ length: LINES }, (_, i) => `${prefix} ${i}`);
}

/**
 * The lines of `stdout` that start with `prefix` + " ". Channel output and fd output have no
 * common clock (docs/agent.md), so each source's lines are checked for order on their own.
 */
function linesOf(stdout: string, prefix: string): string[] {
  return stdout.split("\n").filter((line) => line.startsWith(`${prefix} `));
}

test("a job survives a restart of the agent: killed mid-cell and started again, the cell finishes with every line once, in order", async () => {
  await requireDocker();
  const port = await freePort();
  const listen = `tcp://127.0.0.1:${port}`;
  const args = ["--backend", "docker", "--docker-image", TEST_IMAGE];
  const first = await ListeningAgent.start({ listen, args });
  const dataDir = first.dataDir;
  const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-restart-client-"));
  const keys = clientKeyPair(keysDir);
  first.authorize(keys.publicKey, "restart-test");
  const client = new AgentClient(() => connectZmq({ url: listen, serverKey: first.serverKey, clientKeys: keys, connectTimeoutMs: 5000 }), {
    name: "restart",
    reconnectAttempts: 12, // the kernel's (extension/remote/agents.ts), with the default backoff
    warn: () => undefined,
  });
  let second: ListeningAgent | undefined;
  try {
    const python = { name: "py", lang: "python" as const, resources: { image: TEST_IMAGE } };
    const ts = { name: "ts", lang: "ts" as const, resources: { image: TEST_IMAGE } };
    assert.equal((await readJob(await client.run({ code: "x = 41", session: python }))).status, "ok");
    assert.equal((await readJob(await client.run({ code: "const y: number = 20;", session: ts }))).status, "ok");

    const pyJob = await client.run({
      // print() goes over the runner's channel; os.write(1) straight into the stdout FIFO.
      code: `import os, time\nfor i in range(${LINES}):\n    print(f"py {i}", flush=True)\n    os.write(1, f"py-fd {i}\\n".encode())\n    time.sleep(0.05)`,
      session: python,
    });
    const tsJob = await client.run({
      code: `for (let i = 0; i < ${LINES}; i++) { console.log(\`ts \${i}\`); require("node:fs").writeSync(1, \`ts-fd \${i}\\n\`); await new Promise((r) => setTimeout(r, 50)); }`,
      session: ts,
    });

    // Kill the agent once both cells are well under way, then start it again on the same port.
    let restarted: Promise<ListeningAgent> | undefined;
    const seen = { py: false, ts: false };
    const restartWhenBothPrinted = () => {
      if (restarted || !seen.py || !seen.ts) return;
      restarted = (async () => {
        const exited = new Promise((resolve) => first.child.once("exit", resolve));
        first.child.kill("SIGKILL");
        await exited;
        return ListeningAgent.start({ dataDir, listen, args });
      })();
    };
    const [pyResult, tsResult] = await Promise.all([
      readJob(pyJob, (text) => {
        seen.py ||= text.includes("py 10\n");
        restartWhenBothPrinted();
      }),
      readJob(tsJob, (text) => {
        seen.ts ||= text.includes("ts 10\n");
        restartWhenBothPrinted();
      }),
    ]);
    assert.ok(restarted, "the agent was killed while both cells ran");
    second = await restarted;

    assert.equal(pyResult.status, "ok", JSON.stringify(pyResult.error));
    assert.equal(tsResult.status, "ok", JSON.stringify(tsResult.error));
    for (const [result, prefix] of [[pyResult, "py"], [tsResult, "ts"]] as const) {
      assert.deepEqual(linesOf(result.stdout, prefix), expectedLines(prefix), `every ${prefix} line (channel) once, in order`);
      assert.deepEqual(linesOf(result.stdout, `${prefix}-fd`), expectedLines(`${prefix}-fd`), `every ${prefix}-fd line (FIFO) once, in order`);
      assert.equal(result.stdout.split("\n").length, 2 * LINES + 1, "nothing else");
    }
    assert.ok(pyResult.links.includes("reconnected") && tsResult.links.includes("reconnected"), "the client reconnected to the new agent");
    assert.match(second.log(), /adopted 2 session\(s\) left by an earlier agent/);
    assert.equal(second.log().match(/adopted from an earlier agent, job \S+ goes on after runner message \d+/g)?.length, 2, "both jobs were adopted running");

    // The sessions are the same runtimes: their state is still there.
    assert.equal((await readJob(await client.run({ code: "print(x + 1)", session: python }))).stdout, "42\n");
    assert.equal((await readJob(await client.run({ code: "console.log(y + 1)", session: ts }))).stdout, "21\n");
    assert.equal((await containersOf(dataDir)).length, 2, "no new containers: the old ones were adopted");
  } finally {
    client.close();
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
    await second?.stop();
    await removeContainersOf(dataDir);
    fs.rmSync(keysDir, { recursive: true, force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test("an agent that starts adopts the idle sessions a killed agent left, and removes containers it cannot adopt", async () => {
  await requireDocker();
  const first = AgentHarness.start({ args: ["--backend", "docker"] });
  try {
    const kept = { name: "kept", lang: "python", resources: { image: TEST_IMAGE } };
    const gone = { name: "gone", lang: "python", resources: { image: TEST_IMAGE } };
    for (const [code, session] of [["x = 'still here'", kept], ["pass", gone]] as const) {
      const { status } = await first.done(await first.run(code, session));
      assert.equal(status, "ok");
    }
    first.child.kill("SIGKILL");
    await first.exited;
    // One runtime is gone (its container stopped): nothing to reconnect to.
    const [goneInfo] = await containersOf(first.dataDir, "gone");
    await docker.getContainer(goneInfo.Id).stop({ t: 1 });

    const second = AgentHarness.start({ args: ["--backend", "docker"], dataDir: first.dataDir });
    try {
      const sessions = await second.ok<{ sessions: Array<{ name: string }> }>({ type: "sessions" });
      assert.deepEqual(sessions.sessions.map((s) => s.name), ["kept"]);
      assert.deepEqual((await containersOf(first.dataDir, "gone")).map((c) => c.Id), [], "the stopped container was removed");
      const jobId = await second.run("print(x)", kept);
      assert.equal((await second.done(jobId)).status, "ok");
      assert.equal(second.stdoutOf(jobId), "still here\n");
    } finally {
      await second.close();
    }
  } finally {
    await removeContainersOf(first.dataDir);
  }
});
