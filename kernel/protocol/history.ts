/**
 * Input history for history_request, IPython-style: numbered sessions, numbered lines.
 *
 * Each kernel is one session. Its cells are kept in memory and appended to a JSON-lines file
 * `session-<N>.jsonl` under ~/.local/share/farlab/history (FARLAB_HISTORY_DIR overrides), so a
 * new kernel sees earlier sessions. A session number is claimed by creating its file exclusively,
 * so two kernels started together never share one. The number is claimed when the first cell is
 * recorded and earlier sessions are read on the first history request, to keep start-up fast.
 */
import { appendFileSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createLogger } from "./log";

const log = createLogger("history");

export interface HistoryEntry {
  session: number;
  line: number;
  source: string;
  /** text/plain of the cell's execute_result, if it had one. */
  output?: string;
}

/** One row of a history_reply: (session, line, input) or (session, line, (input, output)). */
export type HistoryRow = [number, number, string] | [number, number, [string, string | null]];

export type HistoryQuery =
  | { kind: "tail"; n: number }
  | { kind: "range"; session: number; start: number; stop: number | null }
  | { kind: "search"; pattern: string; n: number | null; unique: boolean };

export function defaultHistoryDir(): string {
  if (process.env.FARLAB_HISTORY_DIR) return process.env.FARLAB_HISTORY_DIR;
  const dataHome = process.env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(dataHome, "farlab", "history");
}

const SESSION_FILE = /^session-(\d+)\.jsonl$/;

export class HistoryStore {
  private claimed: number | undefined;
  private readonly current: HistoryEntry[] = [];
  private earlier: HistoryEntry[] | undefined;
  private file: string | undefined;

  /** dir undefined: memory only (nothing read or written). Nothing is touched before first use. */
  constructor(private readonly dir: string | undefined = defaultHistoryDir()) {}

  /** This kernel's session number, claimed on first use (a kernel that runs no cell leaves no file). */
  get session(): number {
    return (this.claimed ??= this.claimSession());
  }

  record(line: number, source: string): void {
    this.current.push({ session: this.session, line, source });
    this.append({ line, source });
  }

  recordOutput(line: number, output: string): void {
    const entry = this.current.find((e) => e.line === line);
    if (!entry) return;
    entry.output = output;
    this.append({ line, output });
  }

  query(query: HistoryQuery, withOutput: boolean): HistoryRow[] {
    const entries = this.select(query);
    return entries.map((e): HistoryRow => (withOutput ? [e.session, e.line, [e.source, e.output ?? null]] : [e.session, e.line, e.source]));
  }

  private select(query: HistoryQuery): HistoryEntry[] {
    // Sessions of kernels that ran beside this one may have higher numbers: order by (session, line).
    const all = [...this.loadEarlier(), ...this.current].sort((a, b) => a.session - b.session || a.line - b.line);
    switch (query.kind) {
      case "tail":
        return query.n > 0 ? all.slice(-query.n) : [];
      case "range":
        return this.range(all, query.session, query.start, query.stop);
      case "search": {
        const re = globToRegExp(query.pattern);
        let matches = all.filter((e) => re.test(e.source));
        if (query.unique) {
          const lastIndex = new Map(matches.map((e, i) => [e.source, i]));
          matches = matches.filter((e, i) => lastIndex.get(e.source) === i);
        }
        return query.n !== null && query.n > 0 ? matches.slice(-query.n) : matches;
      }
    }
  }

  /** IPython's get_range: session 0 is this one, negative counts back; start/stop slice line numbers. */
  private range(all: HistoryEntry[], session: number, start: number, stop: number | null): HistoryEntry[] {
    const wanted = session <= 0 ? this.session + session : session;
    const lines = all.filter((e) => e.session === wanted);
    const end = lines.length ? lines[lines.length - 1].line + 1 : 1;
    const from = start < 0 ? Math.max(end + start, 0) : start;
    const to = !stop ? end : stop < 0 ? end + stop : stop;
    return lines.filter((e) => e.line >= from && e.line < to);
  }

  private claimSession(): number {
    if (this.dir === undefined) return 1;
    try {
      mkdirSync(this.dir, { recursive: true });
      let session = 1 + Math.max(0, ...this.sessionFiles().map(([n]) => n));
      for (;;) {
        try {
          closeSync(openSync(join(this.dir, `session-${session}.jsonl`), "wx"));
          this.file = join(this.dir, `session-${session}.jsonl`);
          return session;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
          session += 1;
        }
      }
    } catch (error) {
      log.warn(`history will not persist (${(error as Error).message})`);
      return 1;
    }
  }

  private sessionFiles(): [number, string][] {
    if (this.dir === undefined) return [];
    return readdirSync(this.dir)
      .map((name) => SESSION_FILE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m): [number, string] => [Number(m[1]), join(this.dir!, m[0])])
      .sort((a, b) => a[0] - b[0]);
  }

  private loadEarlier(): HistoryEntry[] {
    if (this.earlier) return this.earlier;
    this.earlier = [];
    try {
      for (const [session, path] of this.sessionFiles()) {
        if (session === this.session) continue;
        this.earlier.push(...parseSessionFile(session, readFileSync(path, "utf8")));
      }
    } catch (error) {
      log.warn(`could not read earlier history: ${(error as Error).message}`);
    }
    return this.earlier;
  }

  /** Lines not yet on disk: written together once the current request's work is done. */
  private pending = "";
  private flushScheduled = false;

  /** Writes what is pending now (at shutdown); otherwise writes happen off the request's path. */
  flush(): void {
    this.flushScheduled = false;
    const text = this.pending;
    this.pending = "";
    if (!this.file || !text) return;
    try {
      appendFileSync(this.file, text);
    } catch (error) {
      log.warn(`history write failed, keeping this session in memory only: ${(error as Error).message}`);
      this.file = undefined;
    }
  }

  // A cell's input and output lines are appended in one write, after the request's messages were
  // handed on (setImmediate), rather than with two synchronous writes on its way.
  private append(record: { line: number; source?: string; output?: string }): void {
    if (!this.file) return;
    this.pending += JSON.stringify(record) + "\n";
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }
}

function parseSessionFile(session: number, text: string): HistoryEntry[] {
  const byLine = new Map<number, HistoryEntry>();
  for (const raw of text.split("\n")) {
    if (!raw.trim()) continue;
    try {
      const record = JSON.parse(raw) as { line?: unknown; source?: unknown; output?: unknown };
      if (typeof record.line !== "number") continue;
      if (typeof record.source === "string") byLine.set(record.line, { session, line: record.line, source: record.source });
      else if (typeof record.output === "string" && byLine.has(record.line)) byLine.get(record.line)!.output = record.output;
    } catch {
      // a torn last line (kernel killed mid-write) is skipped
    }
  }
  return [...byLine.values()].sort((a, b) => a.line - b.line);
}

/** SQLite GLOB semantics (what IPython's history search uses): *, ?, [...] and [^...], case-sensitive, whole string. */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "[") {
      const close = pattern.indexOf("]", i + 2);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\\\]]/g, "\\$&")}]`;
      i = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "u");
}
