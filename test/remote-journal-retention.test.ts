/**
 * Journal retention (remote-agent/agent/journal-retention.ts): finished jobs' journals older than
 * the retention go, the total is kept under the size limit oldest first, a job still being
 * written (its .owner names a live process) always stays; and `farlab-agent serve` prunes at start.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { parseRetention, parseSize, pruneJournal } from "../remote-agent/agent/journal-retention";
import { AGENT_CLI } from "./helpers/listening-agent";

const DAY = 86_400_000;

function journalDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "farlab-retention-"));
}

/** A finished job's journal of `bytes`, last written `ageMs` ago. */
function job(dir: string, id: string, ageMs: number, bytes = 100, live = false): void {
  const file = path.join(dir, `${id}.jsonl`);
  fs.writeFileSync(file, "x".repeat(bytes));
  fs.writeFileSync(path.join(dir, `${id}.meta.json`), "{}");
  const when = new Date(Date.now() - ageMs);
  fs.utimesSync(file, when, when);
  fs.utimesSync(path.join(dir, `${id}.meta.json`), when, when);
  if (live) fs.writeFileSync(path.join(dir, `${id}.owner`), String(process.pid));
}

test("journals older than the retention are removed, with their meta files; newer and live ones stay", () => {
  const dir = journalDir();
  job(dir, "job-old", 8 * DAY);
  job(dir, "job-new", 1 * DAY);
  job(dir, "job-old-but-running", 30 * DAY, 100, true);
  const removed = pruneJournal(dir, { maxAgeMs: 7 * DAY, maxBytes: 1024 ** 3 });
  assert.deepEqual(removed, ["job-old"]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [
    "job-new.jsonl",
    "job-new.meta.json",
    "job-old-but-running.jsonl",
    "job-old-but-running.meta.json",
    "job-old-but-running.owner",
  ]);
});

test("over the size limit, the oldest finished journals go first", () => {
  const dir = journalDir();
  job(dir, "job-a", 3 * DAY, 1000);
  job(dir, "job-b", 2 * DAY, 1000);
  job(dir, "job-c", 1 * DAY, 1000);
  const removed = pruneJournal(dir, { maxAgeMs: 7 * DAY, maxBytes: 2100 });
  assert.deepEqual(removed, ["job-a"]);
});

test("retention and size options read like the magics' durations and sizes", () => {
  assert.equal(parseRetention("7d"), 7 * DAY);
  assert.equal(parseRetention("90m"), 90 * 60_000);
  assert.equal(parseRetention("30"), 30_000);
  assert.equal(parseSize("1GiB"), 1024 ** 3);
  assert.equal(parseSize("512"), 512 * 1024 ** 2);
  assert.throws(() => parseRetention("soon"), /not a duration/);
  assert.throws(() => parseSize("big"), /not a size/);
});

test("farlab-agent serve prunes at start with --journal-retention", async () => {
  const dataDir = journalDir();
  const dir = path.join(dataDir, "journal");
  fs.mkdirSync(dir);
  job(dir, "job-stale", 2 * 3600_000);
  job(dir, "job-fresh", 0);
  const child = spawn(process.execPath, [AGENT_CLI, "serve", "--stdio", "--data-dir", dataDir, "--journal-retention", "1h"], { stdio: ["pipe", "pipe", "pipe"] });
  let log = "";
  // The agent logs what it pruned before it says it is serving.
  await new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      log += text;
      if (log.includes("serving stdio")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the agent exited (${code}): ${log}`)));
  });
  child.stdin.end();
  assert.match(log, /journal retention: removed 1 finished job journal/);
  assert.ok(!fs.existsSync(path.join(dir, "job-stale.jsonl")));
  assert.ok(fs.existsSync(path.join(dir, "job-fresh.jsonl")));
  await new Promise((resolve) => child.once("exit", resolve));
});
