/**
 * AgentClient against the real agent (`farlab-agent serve --stdio`, spawned the way the kernel's
 * embedded default does it), with shell cells so no language runtime is needed:
 * request/reply, job event streams in order, interrupts, error replies, a closed connection.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import type { JobEvent } from "../remote-agent/protocol/messages";
import { AgentClient, type JobStream } from "../extension/remote/agent-client";
import { spawnEmbeddedAgent } from "../extension/remote/embedded-agent";
import { AgentConnectionError, AgentRequestError } from "../extension/remote/errors";

let dataDir: string;
let client: AgentClient;

before(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-client-test-"));
  client = new AgentClient(() => spawnEmbeddedAgent(dataDir), { name: "local", ackEvery: 2, reconnectAttempts: 0 });
});

after(() => {
  client.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const shell = { lang: "sh" as const, resources: {} };

async function collect(stream: AsyncIterable<JobEvent>, onEvent?: (e: JobEvent) => void): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of stream) {
    events.push(event);
    onEvent?.(event);
  }
  return events;
}

test("the client starts the agent lazily and reads its hello", async () => {
  const status = await client.request({ type: "status" });
  assert.equal(status.of, "status");
  assert.equal(client.agentInfo?.of, "hello");
  assert.equal(client.agentInfo?.agentId, status.agentId);
});

test("a job's events come once each, in seq order, ending with done", async () => {
  const job = await client.run({ session: shell, code: "for i in 1 2 3 4 5; do echo line$i; done" });
  const events = await collect(job);
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_e, i) => i + 1),
  );
  assert.ok(events.every((e) => e.jobId === job.jobId));
  const text = events.flatMap((e) => (e.event.kind === "stream" ? [e.event.text] : [])).join("");
  assert.equal(text, "line1\nline2\nline3\nline4\nline5\n");
  const done = events.at(-1)!.event;
  assert.equal(done.kind, "done");
  assert.equal(done.kind === "done" && done.status, "ok");
  // Everything was acknowledged: the agent's job list says how far it got.
  const jobs = await client.request({ type: "jobs" });
  assert.equal(jobs.jobs.find((j) => j.jobId === job.jobId)?.lastSeq, events.length);
});

test("interrupt stops a running job, whose stream still ends with done", async () => {
  const job: JobStream = await client.run({ session: shell, code: "echo started; sleep 30; echo not-reached" });
  const events = await collect(job, (e) => {
    if (e.event.kind === "stream" && e.event.text.includes("started")) void client.interrupt(job.jobId);
  });
  const done = events.at(-1)!.event;
  assert.equal(done.kind === "done" && done.status, "interrupted");
  assert.ok(!events.some((e) => e.event.kind === "stream" && e.event.text.includes("not-reached")));
});

test("an error reply rejects with a typed error carrying the agent's code", async () => {
  await assert.rejects(client.attach("no-such-job"), (error: unknown) => {
    assert.ok(error instanceof AgentRequestError);
    assert.equal(error.code, "not_found");
    assert.equal(error.name, "NotFoundError");
    return true;
  });
});

test("closing the client fails a stream that is still running instead of hanging it", async () => {
  const other = new AgentClient(() => spawnEmbeddedAgent(dataDir), { name: "second", reconnectAttempts: 0 });
  const job = await other.run({ session: shell, code: "echo waiting; sleep 30" });
  await assert.rejects(
    collect(job, (e) => {
      if (e.event.kind === "stream") other.close();
    }),
    AgentConnectionError,
  );
  await assert.rejects(other.request({ type: "status" }), AgentConnectionError);
});

test("an agent that dies fails its running job, and the next request starts a new agent", async () => {
  const job = await client.run({ session: shell, code: "echo running; sleep 30" });
  await assert.rejects(
    collect(job, (e) => {
      if (e.event.kind !== "started") return;
      // "process PID on HOST": the runtime's parent is the agent.
      const runtimePid = Number(/process (\d+)/.exec(e.event.where)?.[1]);
      const agentPid = Number(fs.readFileSync(`/proc/${runtimePid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
      process.kill(agentPid, "SIGKILL");
    }),
    AgentConnectionError,
  );
  const next = await client.run({ session: shell, code: "echo again" });
  const text = (await collect(next)).flatMap((e) => (e.event.kind === "stream" ? [e.event.text] : [])).join("");
  assert.equal(text, "again\n");
});
