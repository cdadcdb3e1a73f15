/**
 * Renders one remote job's events into the notebook cell through the MagicContext, and reports
 * how the job ended. One job, one renderer:
 * - stream: coalesced (kernel/protocol's StreamCoalescer: a few messages a second, order kept)
 *   and "\r" overwrites collapsed inside each flush, so a spinning progress line costs one
 *   message per flush, not one per redraw;
 * - display / update_display / clear_output: the remote bundle as is; display ids are namespaced
 *   by job, so two jobs (or agents) that both say "display-1" never update each other's output;
 * - progress: one ProgressBar (kernel/display) per remote bar id, updated in place and throttled
 *   by the bar itself (count, rate, ETA);
 * - queued / status / started: one status line, updated in place ("waiting for A100: ...");
 * - result / error / done: kept for the caller, who turns them into the cell's value or error;
 * - a dropped link: "reconnecting to AGENT (attempt n)..." as one more line updated in place,
 *   then "reconnected"; the events missed meanwhile follow, each once (AgentClient resumes).
 * A cell shows at most STREAM_LIMIT_CHARS of stream text (the frontend would freeze and the
 * server's iopub rate limit trip long before a flood ends); past it, one notice says where the
 * rest is: the agent keeps the job's whole output in its journal, and `%remote attach JOB`
 * replays it (that renderer has no limit). The same limit goes to the agent with the run
 * (`streamCapChars`), so the rest of a flood never leaves the agent: its `stream_truncated`
 * event ends the text, and the notice is the same whichever side reached the limit first.
 */
import type { JobEvent, JobEventBody } from "../../remote-agent/protocol/messages";
import type { ProgressBar } from "../../kernel/display/api-types";
import { JUPYTER_DISPLAY, type MimeBundle, type MimeMetadata, type SelfDisplaying } from "../../kernel/display/types";
import { StreamCoalescer } from "../../kernel/protocol/stream-coalescer";
import type { MagicContext } from "../magics/types";
import type { LinkStatus } from "./agent-client";

type Ev<K extends JobEventBody["kind"]> = Extract<JobEventBody, { kind: K }>;

/**
 * Stream text shown per remote cell (1 MiB of characters); the rest stays in the job journal.
 * The one source of this limit: %%remote also sends it to the agent as the run's streamCapChars.
 */
export const STREAM_LIMIT_CHARS = 1024 * 1024;

export interface JobOutcome {
  status: Ev<"done">["status"] | "lost";
  result?: Ev<"result">;
  error?: Ev<"error">;
  /** The session the job ran in (from `started`). */
  session?: string;
}

/** A value that displays as the given bundle (the cell's execute_result, or a display). */
export function bundleValue(data: Record<string, unknown>, metadata: MimeMetadata = {}): SelfDisplaying {
  const bundle = { "text/plain": "", ...data } as MimeBundle;
  return { [JUPYTER_DISPLAY]: () => ({ data: bundle, metadata }) };
}

export class JobRenderer {
  private readonly streams: StreamCoalescer;
  private readonly atLineStart = { stdout: true, stderr: true };
  private readonly bars = new Map<string, ProgressBar>();
  private statusShown = false;
  private streamedChars = 0;
  /** Raw stream text handed to the coalescer since its last flush. */
  private unflushedChars = 0;
  private truncated = false;
  private readonly limitChars: number;
  private readonly outcome: JobOutcome = { status: "lost" };

  /** `limitChars`: stream text shown at most (default STREAM_LIMIT_CHARS; Infinity: all of it). */
  constructor(
    private readonly ctx: MagicContext,
    private readonly jobId: string,
    options: { limitChars?: number } = {},
  ) {
    this.limitChars = options.limitChars ?? STREAM_LIMIT_CHARS;
    this.streams = new StreamCoalescer((output) => {
      this.unflushedChars = 0;
      if (output.msgType === "stream") this.writeStream(output.content.name, output.content.text);
    });
  }

  /** Renders every event of `events` until `done`; returns how the job ended. */
  async render(events: AsyncIterable<JobEvent> & { onLink?(listener: (status: LinkStatus) => void): () => void }): Promise<JobOutcome> {
    const unsubscribe = events.onLink?.((status) => this.showLink(status));
    try {
      for await (const { event } of events) {
        this.handle(event);
        if (event.kind === "done") break;
      }
    } finally {
      unsubscribe?.();
      this.streams.flush();
      for (const bar of this.bars.values()) bar.done();
    }
    return this.outcome;
  }

  private linkShown = false;

  private showLink(status: LinkStatus): void {
    this.streams.flush(); // the line goes after the output received before the drop
    const text =
      status.state === "reconnecting"
        ? `reconnecting to ${status.agent} (attempt ${status.attempt} of ${status.of})...`
        : `reconnected to ${status.agent} (attempt ${status.attempt}); output continues where it stopped`;
    this.ctx.display(bundleValue({ "text/plain": text }), { displayId: `farlab-remote-${this.jobId}-link`, update: this.linkShown });
    this.linkShown = true;
  }

  private handle(event: JobEventBody): void {
    if (event.kind === "stream" || event.kind === "stream_truncated") {
      if (this.truncated) return; // past the limit: nothing to buffer
      this.streams.publish({ msgType: "stream", content: { name: event.name, text: event.text } });
      this.unflushedChars += event.text.length;
      // A flood between two flushes is cut at the limit as it comes, not held whole.
      if (this.unflushedChars >= this.limitChars) this.streams.flush();
      if (event.kind === "stream_truncated") {
        // The agent stopped sending stream text here (the run's streamCapChars).
        this.streams.flush();
        this.showTruncated();
      }
      return;
    }
    this.streams.flush(); // everything else keeps its place after the text before it
    switch (event.kind) {
      case "queued":
        this.showStatus(event.position > 0 ? `${event.reason}: ${plural(event.position, "job")} ahead` : event.reason);
        break;
      case "status":
        this.showStatus(event.text);
        break;
      case "started":
        this.outcome.session = event.session;
        // Only a cell that had to wait shows where it finally started.
        if (this.statusShown) {
          const gpus = event.gpus.length ? ` with ${event.gpus.join(", ")}` : "";
          this.showStatus(`started on ${event.where}${gpus} (session '${event.session}')`);
        }
        break;
      case "display":
        this.ctx.display(bundleValue(event.data, event.metadata), {
          displayId: event.displayId === undefined ? undefined : this.displayId(event.displayId),
        });
        break;
      case "update_display":
        this.ctx.display(bundleValue(event.data, event.metadata), { displayId: this.displayId(event.displayId), update: true });
        break;
      case "clear_output":
        this.ctx.display.clear(event.wait);
        for (const key of this.bars.keys()) this.bars.delete(key); // their displays are gone
        this.statusShown = false;
        break;
      case "progress":
        this.progress(event);
        break;
      case "result":
        this.outcome.result = event;
        break;
      case "error":
        this.outcome.error = event;
        break;
      case "done":
        this.outcome.status = event.status;
        break;
    }
  }

  private progress(event: Ev<"progress">): void {
    let bar = this.bars.get(event.id);
    if (!bar) {
      bar = this.ctx.display.progress({ total: event.total ?? undefined, description: event.description });
      this.bars.set(event.id, bar);
    }
    bar.set(event.n, event.total ?? undefined);
    if (event.closed) {
      bar.done();
      this.bars.delete(event.id);
    }
  }

  private showStatus(text: string): void {
    this.ctx.display(bundleValue({ "text/plain": text }), {
      displayId: `farlab-remote-${this.jobId}-status`,
      update: this.statusShown,
    });
    this.statusShown = true;
  }

  /** Remote display ids live in the job's namespace, apart from the status line's own id. */
  private displayId(remoteId: string): string {
    return `farlab-remote-${this.jobId}-display-${remoteId}`;
  }

  private writeStream(name: "stdout" | "stderr", text: string): void {
    if (this.truncated) return;
    let collapsed = collapseOverwrites(text, this.atLineStart[name]);
    if (collapsed === "") return;
    this.streamedChars += collapsed.length;
    if (this.streamedChars >= this.limitChars) {
      collapsed = collapsed.slice(0, collapsed.length - (this.streamedChars - this.limitChars));
      if (collapsed !== "") this.ctx.stream(name, collapsed);
      this.showTruncated();
      return;
    }
    this.atLineStart[name] = collapsed.endsWith("\n");
    this.ctx.stream(name, collapsed);
  }

  /** The one notice that the cell's text stops here, and how to see all of it. */
  private showTruncated(): void {
    if (this.truncated) return;
    this.truncated = true;
    this.ctx.stream("stderr", truncationNotice(this.jobId, this.limitChars));
  }
}

/** What a cell says where its stream text was cut off (tests look for the `%remote attach` hint). */
function truncationNotice(jobId: string, limitChars: number): string {
  return (
    `\n[farlab: output shown up to ${formatChars(limitChars)}; the cell goes on, and its whole output stays ` +
    `in the agent's journal: \`%remote attach ${jobId}\` shows all of it]\n`
  );
}

function formatChars(chars: number): string {
  return chars % (1024 * 1024) === 0 ? `${chars / 1024 / 1024} MiB` : `${chars} characters`;
}

/**
 * Drops the text a "\r" overwrites inside one chunk: "\r 10%\r 20%\r 30%" -> "\r 30%". Only the
 * visible result of each line is kept. A chunk that overwrites a line an earlier chunk left open
 * (`atLineStart` false) starts with "\r", so the frontend replaces that line too; a line that ends
 * in "\r" keeps it, so the next chunk overwrites it. "\r\n" is a plain line end.
 */
export function collapseOverwrites(text: string, atLineStart: boolean): string {
  if (!text.includes("\r")) return text;
  const lines = text.replace(/\r+\n/g, "\n").split("\n");
  return lines
    .map((line, index) => {
      if (!line.includes("\r")) return line;
      const pieces = line.split("\r");
      const endsOpen = pieces[pieces.length - 1] === "" ? "\r" : "";
      let last = pieces.length - 1;
      while (last >= 0 && pieces[last] === "") last--;
      // Nothing after the first piece: no overwrite inside this chunk, the line just goes on.
      if (last <= 0) return `${pieces[0]}${endsOpen}`;
      const overwritesEarlierChunk = index === 0 && !atLineStart ? "\r" : "";
      return `${overwritesEarlierChunk}${pieces[last]}${endsOpen}`;
    })
    .join("\n");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
