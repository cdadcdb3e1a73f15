/**
 * Journal retention: a finished job's journal (DATA/journal/<jobId>.jsonl and its .meta.json) is
 * kept for `maxAgeMs` after it was last written (default 7 days), and the journals together are
 * kept under `maxBytes` (default 1 GiB) by removing the oldest finished ones first. A job still
 * being written (its .owner file names a live agent process) is never removed. Pruned when the
 * agent starts and then every `intervalMs` (default 1 hour); `farlab-agent serve
 * --journal-retention 7d --journal-max-size 1GiB` sets the limits (docs/transports.md).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Log } from "./log";
import { livePidIn } from "./pid-file";

export interface RetentionOptions {
  maxAgeMs: number;
  maxBytes: number;
  intervalMs?: number;
}

export const DEFAULT_RETENTION: RetentionOptions = { maxAgeMs: 7 * 24 * 3600_000, maxBytes: 1024 ** 3, intervalMs: 3600_000 };

interface JournalFiles {
  jobId: string;
  files: string[];
  bytes: number;
  mtimeMs: number;
}

/** Removes what is past the limits now; returns the job ids removed. */
export function pruneJournal(dir: string, options: RetentionOptions, now = Date.now()): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const jobs = new Map<string, JournalFiles>();
  const live = new Set<string>();
  for (const name of names) {
    const match = /^([A-Za-z0-9_-]+)\.(jsonl|meta\.json|owner)$/.exec(name);
    if (!match) continue;
    const [, jobId, kind] = match;
    const file = path.join(dir, name);
    if (kind === "owner") {
      // This agent's own running jobs are live too.
      if (livePidIn(file) !== undefined) live.add(jobId);
      continue;
    }
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      continue;
    }
    const entry = jobs.get(jobId) ?? { jobId, files: [], bytes: 0, mtimeMs: 0 };
    entry.files.push(file);
    entry.bytes += stat.size;
    entry.mtimeMs = Math.max(entry.mtimeMs, stat.mtimeMs);
    jobs.set(jobId, entry);
  }
  const finished = [...jobs.values()].filter((job) => !live.has(job.jobId)).sort((a, b) => a.mtimeMs - b.mtimeMs);
  let total = [...jobs.values()].reduce((sum, job) => sum + job.bytes, 0);
  const removed: string[] = [];
  for (const job of finished) {
    if (now - job.mtimeMs <= options.maxAgeMs && total <= options.maxBytes) continue;
    for (const file of job.files) fs.rmSync(file, { force: true });
    // An .owner file whose process is gone goes with its journal.
    fs.rmSync(path.join(dir, `${job.jobId}.owner`), { force: true });
    total -= job.bytes;
    removed.push(job.jobId);
  }
  return removed;
}

/** Prunes now and then every intervalMs (the timer does not keep the agent alive). */
export function startJournalRetention(dir: string, options: RetentionOptions, log: Log): () => void {
  const prune = () => {
    try {
      const removed = pruneJournal(dir, options);
      if (removed.length) log(`journal retention: removed ${removed.length} finished job journal(s)`);
    } catch (error) {
      log(`journal retention failed: ${(error as Error).message}`);
    }
  };
  prune();
  const timer = setInterval(prune, options.intervalMs ?? DEFAULT_RETENTION.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** `7d`, `12h`, `90m`, `30s`, or seconds: the retention of `--journal-retention`. */
export function parseRetention(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(d|h|m|s)?$/.exec(text.trim());
  if (!match) throw new Error(`'${text}' is not a duration: use e.g. 7d, 12h, 90m, 30s or a number of seconds`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 }[(match[2] ?? "s") as "d" | "h" | "m" | "s"];
  return Number(match[1]) * unit;
}

/** `1GiB`, `500MiB`, `2GB` (read as GiB), or MiB: the limit of `--journal-max-size`. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$/i.exec(text.trim());
  if (!match) throw new Error(`'${text}' is not a size: use e.g. 512MiB, 1GiB or a number of MiB`);
  const exponent = { k: 1, m: 2, g: 3, t: 4 }[(match[2] ?? "M")[0].toLowerCase() as "k" | "m" | "g" | "t"];
  return Math.round(Number(match[1]) * 1024 ** exponent);
}
