/**
 * Who owns what on a shared agent: every job and every named session belongs to the user of the
 * connection that made it, and a connection sees and touches only its own user's (jobs, output,
 * sessions). A user is what `hello` says in `client.user` (a kernel sends its CURVE public key,
 * the same in every kernel, so a new kernel can list and attach to the jobs of an earlier one);
 * a client that names no user is a user of its own (its client id).
 *
 * Ownership of a job is kept beside its journal, DATA/journal/<jobId>.meta.json, written before
 * the job's first event: so another agent process on the same data dir (the next
 * `serve --stdio` after an SSH reconnect) and a later `%remote jobs` know whose it is.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { JobInfo } from "../protocol/messages";
import type { Journal } from "./journal";
import { isSafeJobId } from "./journal";

export interface JobMeta {
  owner: string;
  session: string;
  codePreview: string;
  createdAt: number;
  /** The job's timeout= (an agent that adopts the running job keeps it). */
  timeoutMs?: number;
}

/** The owner a `hello` makes a connection act for. */
export function ownerOfClient(client: { id: string; user?: string }): string {
  return client.user ? `user:${client.user}` : `client:${client.id}`;
}

function metaPath(journal: Journal, jobId: string): string {
  return path.join(path.dirname(journal.pathOf(jobId)), `${jobId}.meta.json`);
}

export function writeJobMeta(journal: Journal, jobId: string, meta: JobMeta): void {
  fs.writeFileSync(metaPath(journal, jobId), JSON.stringify(meta));
}

export function readJobMeta(journal: Journal, jobId: string): JobMeta | undefined {
  if (!isSafeJobId(jobId)) return undefined;
  try {
    const meta = JSON.parse(fs.readFileSync(metaPath(journal, jobId), "utf8")) as JobMeta;
    return typeof meta.owner === "string" ? meta : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `owner` may see job `jobId` (a job without a meta file belongs to no one). */
export function journalOwnedBy(journal: Journal, jobId: string, owner: string): boolean {
  return readJobMeta(journal, jobId)?.owner === owner;
}

/**
 * The owner's jobs known only from the journal (run by another agent process on this data dir,
 * or forgotten from memory), newest first, at most `limit`; `skip` are listed already.
 */
export function journalJobsOf(journal: Journal, owner: string, skip: Set<string>, limit: number): JobInfo[] {
  const dir = path.dirname(journal.pathOf("x"));
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const metas: Array<{ jobId: string; meta: JobMeta }> = [];
  for (const name of names) {
    if (!name.endsWith(".meta.json")) continue;
    const jobId = name.slice(0, -".meta.json".length);
    if (skip.has(jobId)) continue;
    const meta = readJobMeta(journal, jobId);
    if (meta?.owner === owner) metas.push({ jobId, meta });
  }
  metas.sort((a, b) => b.meta.createdAt - a.meta.createdAt);
  return metas.slice(0, limit).map(({ jobId, meta }) => infoFromJournal(journal, jobId, meta));
}

function infoFromJournal(journal: Journal, jobId: string, meta: JobMeta): JobInfo {
  const events = journal.read(jobId);
  const started = events.find((e) => e.event.kind === "started");
  const done = events.find((e) => e.event.kind === "done");
  const running = !done && journal.ownedByLiveAgent(jobId);
  return {
    jobId,
    session: meta.session,
    state: done ? "done" : running ? (started ? "running" : "queued") : "done",
    status: done?.event.kind === "done" ? done.event.status : running ? undefined : "error",
    startedAt: started?.time,
    endedAt: done?.time,
    lastSeq: events.length ? events[events.length - 1].seq : 0,
    codePreview: meta.codePreview,
  };
}
