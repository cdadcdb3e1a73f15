/**
 * A flood of output and nothing lost, on a real `farlab-agent serve --stdio` with its bash
 * runtime (`seq` prints ~20 MB of numbered lines):
 * - with the run's `streamCapChars` the client receives at most the cap, ended by one
 *   `stream_truncated` event, while the job's journal holds the whole output in order;
 * - `attach` without a cap replays all of it; a resume (`attach` from a seq with the same cap)
 *   gets exactly the capped events it had not seen;
 * - a client that stops reading holds the runtime back (back-pressure) and, once it reads again,
 *   still receives every line once and in order.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { Journal } from "../remote-agent/agent/journal";
import type { JobEvent } from "../remote-agent/protocol/messages";
import { AgentHarness, withAgent } from "./agent-harness";
import { waitFor } from "./helpers/wait";

const LINES = 2_500_000; // `seq 1 2500000`: 19.9 MB
const CAP = 1024 * 1024;
const EXPECTED = Array.from({ length: LINES }, (_, i) => `${i + 1}\n`).join("");

type StreamText = Extract<JobEvent["event"], { kind: "stream" | "stream_truncated" }>;

function streamText(events: JobEvent[]): string {
  return events.map((e) => (e.event.kind === "stream" || e.event.kind === "stream_truncated" ? (e.event as StreamText).text : "")).join("");
}

/** What the agent journalled for the job (the reader `attach` uses). */
function journalOf(harness: AgentHarness, jobId: string): JobEvent[] {
  return new Journal(path.join(harness.dataDir, "journal")).read(jobId);
}

function assertIncreasingSeqs(events: JobEvent[]): void {
  for (let i = 1; i < events.length; i++) assert.ok(events[i].seq > events[i - 1].seq, `seq ${events[i].seq} after ${events[i - 1].seq}`);
}

test("a capped run sends at most the cap and one notice; the journal and an uncapped attach hold everything", () =>
  withAgent(async (agent) => {
    const jobId = await agent.run(`seq 1 ${LINES}`, { lang: "sh" }, { streamCapChars: CAP });
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "ok");
    assertIncreasingSeqs(events);

    const shown = streamText(events);
    assert.ok(shown.length <= CAP, `the client received ${shown.length} characters of stream text, over the cap`);
    assert.ok(EXPECTED.startsWith(shown), "what the client received is the start of the output, in order");
    const notices = events.filter((e) => e.event.kind === "stream_truncated");
    assert.equal(notices.length, 1, "exactly one stream_truncated event");
    const noticeAt = events.indexOf(notices[0]);
    assert.ok(events.slice(noticeAt).every((e) => e.event.kind !== "stream"), "no stream text after the notice");
    assert.equal(shown.length, CAP, "the text up to the notice fills the cap");

    // Nothing lost: the journal has every line, in order, and never a notice.
    const journal = journalOf(agent, jobId);
    assert.equal(streamText(journal), EXPECTED);
    assert.ok(journal.every((e) => e.event.kind !== "stream_truncated"));

    // `attach` without a cap (what `%remote attach JOB` sends) replays all of it.
    const before = agent.received.length;
    const attached = await agent.ok<{ lastSeq: number }>({ type: "attach", jobId, fromSeq: 0 });
    assert.equal(attached.lastSeq, journal[journal.length - 1].seq);
    await agent.waitFor((m) => agent.received.indexOf(m) >= before && m.type === "event" && m.jobId === jobId && m.event.kind === "done");
    const replay = agent.received.slice(before).filter((m): m is JobEvent => m.type === "event" && m.jobId === jobId);
    assertIncreasingSeqs(replay);
    assert.equal(streamText(replay), EXPECTED);

    // A resume from the middle of the capped events, with the same cap, gets exactly the rest of them.
    const resumeFrom = events[Math.floor(noticeAt / 2)].seq;
    const mark = agent.received.length;
    await agent.ok({ type: "attach", jobId, fromSeq: resumeFrom, streamCapChars: CAP });
    await agent.waitFor((m) => agent.received.indexOf(m) >= mark && m.type === "event" && m.jobId === jobId && m.event.kind === "done");
    const resumed = agent.received.slice(mark).filter((m): m is JobEvent => m.type === "event" && m.jobId === jobId);
    assert.deepEqual(resumed, events.filter((e) => e.seq > resumeFrom));
  }));

test("a client that stops reading holds the runtime back, and then gets every line once, in order", () =>
  withAgent(async (agent) => {
    const jobId = await agent.run(`seq 1 ${LINES}`, { lang: "sh" });
    agent.child.stdout.pause();
    const journalFile = path.join(agent.dataDir, "journal", `${jobId}.jsonl`);
    // The agent queues up to its high-water mark for this client, then stops reading the
    // runtime, which blocks: the journal stops growing long before the 20 MB are out.
    let lastSize = -1;
    const heldAt = await waitFor(
      () => {
        const size = fs.existsSync(journalFile) ? fs.statSync(journalFile).size : 0;
        const settled = size >= CAP && size === lastSize;
        lastSize = size;
        return settled && size;
      },
      { what: "the journal to stop growing while the client reads nothing", intervalMs: 500, timeoutMs: 60_000 },
    );
    assert.ok(!fs.readFileSync(journalFile, "utf8").includes('"kind":"done"'), "the job cannot finish while its only client reads nothing");
    assert.ok(heldAt < EXPECTED.length / 4, `the agent journalled ${heldAt} bytes before holding the runtime back`);
    agent.child.stdout.resume();
    const { status, events } = await agent.done(jobId);
    assert.equal(status, "ok");
    assertIncreasingSeqs(events);
    assert.equal(streamText(events), EXPECTED);
  }));
