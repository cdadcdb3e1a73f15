/**
 * Jobs on a real agent with real runtimes (lang=sh: the node runner running bash cells): events
 * in seq order and journalled, attach/replay (live and after an agent restart), the session
 * queue, cancel, interrupt, timeout with the SIGINT -> SIGTERM escalation, named and fresh
 * sessions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { JobEvent } from "../remote-agent/protocol/messages";
import { Job } from "../remote-agent/agent/job";
import { Journal } from "../remote-agent/agent/journal";
import { AgentHarness, tempDir as makeTempDir, withAgent } from "./agent-harness";

/** A shell line that blocks until the test creates `file` (the test's go signal). */
/**
 * A shell loop that waits for `file`. It also ends when the file's folder is gone: a runtime
 * orphaned by a killed agent must not outlive the test that removes its temporary folder.
 */
const waitFor = (file: string) => `while [ ! -e '${file}' ] && [ -d '${path.dirname(file)}' ]; do sleep 0.02; done`;
const tempDir = () => makeTempDir("farlab-jobs-");

function assertSeqsInOrder(events: JobEvent[]): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
    "seq numbers run 1, 2, 3, ... with no gap or repeat",
  );
}

const kinds = (events: JobEvent[]) => events.map((e) => e.event.kind);
const startedWhere = (events: JobEvent[]) => {
  const started = events.find((e) => e.event.kind === "started");
  assert.ok(started && started.event.kind === "started");
  return started.event;
};

test("job events: output is coalesced per stream, in order with everything else, and journalled", () => {
  const journal = new Journal(path.join(tempDir(), "journal"));
  const job = new Job("unit", { code: "", inputs: {}, wantValue: false, timeoutMs: 1000 }, journal);
  const sent: JobEvent[] = [];
  job.follow(0, (event) => sent.push(event));
  for (let i = 0; i < 100; i++) job.stream("stdout", `${i}\n`);
  job.stream("stderr", "warning\n");
  job.stream("stdout", "after\n");
  job.emit({ kind: "display", data: { "text/plain": "x" }, metadata: {} });
  job.stream("stdout", "last\n");
  job.finish("ok");
  assert.deepEqual(
    sent.map((e) => (e.event.kind === "stream" ? [e.event.name, e.event.text.length] : e.event.kind)),
    [["stdout", 290], ["stderr", 8], ["stdout", 6], "display", ["stdout", 5], "done"],
  );
  assertSeqsInOrder(sent);
  assert.deepEqual(journal.read(job.id), sent);
  assert.equal(fs.existsSync(path.join(path.dirname(journal.pathOf(job.id)), `${job.id}.owner`)), false, "ownership ends with the job");
});

test("run: fd-level output streams as events in seq order, journalled before they are sent", () =>
  withAgent(async (agent) => {
    await agent.ok({ type: "hello", client: { id: "jobs-test" } });
    const jobId = await agent.run("echo hello; echo oops >&2; ls /proc/self >/dev/null && echo from-a-subprocess");
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "ok");
    assertSeqsInOrder(events);
    assert.equal(kinds(events)[0], "started");
    assert.equal(kinds(events).at(-1), "done");
    assert.equal(agent.stdoutOf(jobId), "hello\nfrom-a-subprocess\n");
    const stderr = events.map((e) => (e.event.kind === "stream" && e.event.name === "stderr" ? e.event.text : "")).join("");
    assert.equal(stderr, "oops\n");
    const started = startedWhere(events);
    assert.match(started.where, /^process \d+ on /);
    assert.deepEqual(started.gpus, []);

    const journal = fs
      .readFileSync(path.join(agent.dataDir, "journal", `${jobId}.jsonl`), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(journal, events, "the journal holds exactly the events sent");

    const jobs = await agent.ok<{ jobs: Array<{ jobId: string; state: string; status?: string; codePreview: string }> }>({ type: "jobs" });
    const info = jobs.jobs.find((j) => j.jobId === jobId);
    assert.deepEqual(
      info && { state: info.state, status: info.status, preview: info.codePreview.startsWith("echo hello") },
      { state: "done", status: "ok", preview: true },
    );
    assert.equal((await agent.request({ type: "ack", jobId, seq: events.length })).type, "reply");
  }),
);

test("attach: live from the last seq seen (each event once), replay from any seq, and after an agent restart", async () => {
  const dir = tempDir();
  const agent = AgentHarness.start();
  let jobId: string;
  let all: JobEvent[];
  try {
    jobId = await agent.run(`echo first; ${waitFor(path.join(dir, "go"))}; echo second; echo third`);
    const first = await agent.waitForEvent(jobId, (e) => e.kind === "stream" && e.text.includes("first"));
    // Re-attach from what was rendered (as a reconnecting client does), then let the job go on.
    const attach = await agent.ok<{ lastSeq: number }>({ type: "attach", jobId, fromSeq: first.seq });
    assert.ok(attach.lastSeq >= first.seq);
    fs.writeFileSync(path.join(dir, "go"), "");
    const done = await agent.done(jobId);
    assert.equal(done.status, "ok");
    all = done.events;
    assertSeqsInOrder(all);
    assert.equal(agent.stdoutOf(jobId), "first\nsecond\nthird\n");

    // Replay of a finished job from seq 2: exactly the events after it, in order.
    const before = agent.events(jobId).length;
    const replay = await agent.ok<{ lastSeq: number }>({ type: "attach", jobId, fromSeq: 2 });
    assert.equal(replay.lastSeq, all.length);
    await agent.waitFor((m) => m.type === "event" && m.jobId === jobId && agent.events(jobId).length === before + all.length - 2);
    assert.deepEqual(agent.events(jobId).slice(before), all.slice(2));
  } finally {
    assert.equal(await agent.close(), 0);
  }

  // A new agent on the same data dir replays the job from its journal.
  const again = AgentHarness.start({ dataDir: agent.dataDir });
  try {
    const replay = await again.ok<{ lastSeq: number }>({ type: "attach", jobId, fromSeq: 0 });
    assert.equal(replay.lastSeq, all.length);
    await again.waitForEvent(jobId, (e) => e.kind === "done");
    assert.deepEqual(again.events(jobId), all);
  } finally {
    await again.close();
  }
});

test("one job at a time per session: the next waits with its position and can be cancelled", () => {
  const dir = tempDir();
  return withAgent(async (agent) => {
    const session = { name: "queue" };
    const first = await agent.run(`echo one; ${waitFor(path.join(dir, "go"))}`, session);
    await agent.waitForEvent(first, (e) => e.kind === "started");
    const second = await agent.run("echo two", session);
    const third = await agent.run("echo three", session);
    const queued2 = await agent.waitForEvent(second, (e) => e.kind === "queued");
    const queued3 = await agent.waitForEvent(third, (e) => e.kind === "queued");
    assert.deepEqual(queued2.event, { kind: "queued", position: 1, reason: "1 job ahead in session 'queue'" });
    assert.deepEqual(queued3.event, { kind: "queued", position: 2, reason: "2 jobs ahead in session 'queue'" });

    assert.equal((await agent.request({ type: "cancel", jobId: second })).type, "reply");
    const cancelled = await agent.done(second);
    assert.equal(cancelled.status, "cancelled");
    assert.ok(!kinds(cancelled.events).includes("started"), "a cancelled queued job never starts");
    // The third moves up.
    await agent.waitForEvent(third, (e) => e.kind === "queued" && e.position === 1);

    fs.writeFileSync(path.join(dir, "go"), "");
    assert.equal((await agent.done(first)).status, "ok");
    assert.equal((await agent.done(third)).status, "ok");
    assert.equal(agent.stdoutOf(third), "three\n");
    // Both ran in the same runtime.
    assert.equal(startedWhere(agent.events(third)).where, startedWhere(agent.events(first)).where);
  });
});

test("interrupt: SIGINT stops the cell and the session's runtime survives", () =>
  withAgent(async (agent) => {
    const session = { name: "intr" };
    const jobId = await agent.run("echo started; sleep 30; echo not-reached", session);
    await agent.waitForEvent(jobId, (e) => e.kind === "stream" && e.text.includes("started"));
    assert.equal((await agent.request({ type: "interrupt", jobId })).type, "reply");
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "interrupted");
    assert.ok(events.some((e) => e.event.kind === "error"), "the cell ends with an error");
    assert.ok(!agent.stdoutOf(jobId).includes("not-reached"));

    const next = await agent.run("echo after", session);
    assert.equal((await agent.done(next)).status, "ok");
    assert.equal(startedWhere(agent.events(next)).where, startedWhere(events).where, "same runtime process");
  }),
);

test("timeout: TimeoutError; SIGINT suffices, or SIGTERM after the grace period and the session restarts", () =>
  withAgent(async (agent) => {
    const session = { name: "slow" };
    const polite = await agent.run("sleep 30", session, { timeoutMs: 300 });
    const first = await agent.done(polite);
    assert.equal(first.status, "timeout");
    const errors = first.events.filter((e) => e.event.kind === "error").map((e) => e.event);
    assert.deepEqual(
      errors.map((e) => e.kind === "error" && [e.ename, e.evalue]),
      [["TimeoutError", "cell exceeded timeout=300ms"]],
      "one error: the TimeoutError (not the runner's interrupt as well)",
    );

    // This one ignores SIGINT: the runtime is terminated, the session starts a new one.
    const stubborn = await agent.run("trap '' INT; echo ignoring; sleep 30", session, { timeoutMs: 1000 });
    const second = await agent.done(stubborn);
    assert.equal(second.status, "timeout");
    const error = second.events.find((e) => e.event.kind === "error")?.event;
    assert.ok(error?.kind === "error");
    assert.equal(error.ename, "TimeoutError");
    assert.match(error.evalue, /^cell exceeded timeout=1s; .*session was restarted/);
    assert.equal(startedWhere(second.events).where, startedWhere(first.events).where, "SIGINT had sufficed the first time");

    const after = await agent.run("echo alive", session);
    const third = await agent.done(after);
    assert.equal(third.status, "ok");
    assert.equal(agent.stdoutOf(after), "alive\n");
    assert.notEqual(startedWhere(third.events).where, startedWhere(second.events).where, "a new runtime");
  }),
);

test("sessions: named ones keep their settings, default ones are per settings, fresh ones go away", () =>
  withAgent(async (agent) => {
    await agent.ok({ type: "hello", client: { id: "sessions-test" } });
    const a = await agent.run("echo a", { name: "two" });
    assert.equal((await agent.done(a)).status, "ok");
    assert.equal(startedWhere(agent.events(a)).session, "two");

    const mismatch = await agent.request({ type: "run", code: "1", session: { name: "two", lang: "python", resources: {} } });
    assert.equal(mismatch.type, "error");
    assert.equal(mismatch.type === "error" && mismatch.code, "usage");
    assert.match(mismatch.type === "error" ? mismatch.message : "", /session 'two' is running with lang=sh.*asks for lang=python.*%remote stop two.*%remote restart two/);

    // Default sessions: the same settings share one, different settings get another.
    const d1 = await agent.run("echo d1");
    const d2 = await agent.run("echo d2");
    const d3 = await agent.run("echo d3", { resources: { cpu: 1 } });
    const [s1, s2, s3] = await Promise.all([d1, d2, d3].map(async (id) => (await agent.done(id), startedWhere(agent.events(id)))));
    assert.equal(s1.session, s2.session);
    assert.equal(s1.where, s2.where);
    assert.notEqual(s3.session, s1.session);

    const fresh = await agent.run("echo f", { fresh: true });
    assert.equal((await agent.done(fresh)).status, "ok");
    const freshSession = startedWhere(agent.events(fresh)).session;
    assert.match(freshSession, /^fresh-/);
    // Torn down after its job (wait for the agent to say so, request by request).
    let names: string[] = [];
    for (let i = 0; i < 500; i++) {
      names = (await agent.ok<{ sessions: Array<{ name: string }> }>({ type: "sessions" })).sessions.map((s) => s.name);
      if (!names.includes(freshSession)) break;
    }
    assert.ok(!names.includes(freshSession), "the fresh session is gone");
    assert.ok(names.includes("two") && names.includes(s1.session) && names.includes(s3.session));

    // Stop and restart by name.
    assert.equal((await agent.request({ type: "session_restart", name: "two" })).type, "reply");
    const b = await agent.run("echo b", { name: "two" });
    assert.equal((await agent.done(b)).status, "ok");
    assert.notEqual(startedWhere(agent.events(b)).where, startedWhere(agent.events(a)).where, "restart gave a new runtime");
    assert.equal((await agent.request({ type: "session_stop", name: "two" })).type, "reply");
    const listed = (await agent.ok<{ sessions: Array<{ name: string }> }>({ type: "sessions" })).sessions.map((s) => s.name);
    assert.ok(!listed.includes("two"));
    // Now the name is free for other settings.
    const c = await agent.run("echo c", { name: "two", resources: { cpu: 2 } });
    assert.equal((await agent.done(c)).status, "ok");
  }),
);

test("attach from another agent process: follows a job whose client went away, and ends one whose agent died", async () => {
  const dir = tempDir();
  const first = AgentHarness.start();
  const jobId = await first.run(`echo first; ${waitFor(path.join(dir, "go"))}; echo second`);
  await first.waitForEvent(jobId, (e) => e.kind === "stream");
  first.child.stdin.end(); // the client is gone; the agent finishes the job before it exits

  const second = AgentHarness.start({ dataDir: first.dataDir });
  try {
    const attach = await second.ok<{ lastSeq: number }>({ type: "attach", jobId, fromSeq: 0 });
    assert.ok(attach.lastSeq >= 2);
    await second.waitForEvent(jobId, (e) => e.kind === "stream" && e.text === "first\n");
    const refused = await second.request({ type: "interrupt", jobId });
    assert.equal(refused.type, "error");
    assert.match(refused.type === "error" ? refused.message : "", /run by another agent process/);
    fs.writeFileSync(path.join(dir, "go"), "");
    const { status, events } = await second.done(jobId);
    assert.equal(status, "ok");
    assertSeqsInOrder(events);
    assert.equal(second.stdoutOf(jobId), "first\nsecond\n");
    assert.equal(await first.exited, 0, "the first agent exits once its job is done");

    // An agent killed mid-job: the journal has no `done`; attaching ends the job with an error.
    const doomed = AgentHarness.start({ dataDir: first.dataDir });
    const orphan = await doomed.run(`echo doomed; ${waitFor(path.join(dir, "go2"))}`);
    await doomed.waitForEvent(orphan, (e) => e.kind === "stream");
    doomed.child.kill("SIGKILL");
    await doomed.exited;
    await second.ok({ type: "attach", jobId: orphan, fromSeq: 0 });
    const ended = await second.done(orphan);
    assert.equal(ended.status, "error");
    assertSeqsInOrder(ended.events);
    const error = ended.events.find((e) => e.event.kind === "error")?.event;
    assert.equal(error?.kind === "error" && error.ename, "AgentExitedError");
  } finally {
    fs.writeFileSync(path.join(dir, "go2"), ""); // lets the killed agent's orphaned shell finish
    await second.close();
  }
});
