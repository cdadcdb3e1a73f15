/**
 * A progress bar that is one display, updated in place (display_data once, then
 * update_display_data), throttled to about ten updates a second; the final state is always
 * published. Used by `display.progress(...)` in local cells and in the remote TypeScript runtime,
 * and by the kernel to draw progress events that arrive from remote jobs (`update`).
 *
 * text/plain reads well in a terminal:   `label  42/100 [####      ] 42% 12.3 it/s ETA 4s`
 * text/html is a <progress> element with the same text beside it.
 */
import { randomUUID } from "node:crypto";
import type { ProgressBar, ProgressOptions } from "./api-types";
import { Throttle, type ThrottleOptions } from "./throttle";
import type { DisplaySink, MimeBundle } from "./types";

export interface ProgressDisplayOptions extends ProgressOptions, Pick<ThrottleOptions, "now" | "schedule"> {
  displayId?: string;
}

export interface ProgressState {
  n: number;
  total?: number;
  description?: string;
  unit?: "items" | "bytes";
}

const BAR_WIDTH = 20;

export class ProgressDisplay implements ProgressBar {
  readonly displayId: string;
  private n = 0;
  private total: number | undefined;
  private description: string | undefined;
  private readonly unit: "items" | "bytes";
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly throttle: Throttle;

  constructor(private readonly sink: DisplaySink, options: ProgressDisplayOptions = {}) {
    this.displayId = options.displayId ?? `farlab-progress-${randomUUID()}`;
    this.total = options.total;
    this.description = options.description;
    this.unit = options.unit ?? "items";
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.throttle = new Throttle(() => this.publishUpdate(), { minIntervalMs: options.minIntervalMs, now: this.now, schedule: options.schedule });
    this.sink.publish({
      msgType: "display_data",
      content: { data: this.bundle(), metadata: {}, transient: { display_id: this.displayId } },
    });
  }

  tick(n = 1): void {
    this.update({ n: this.n + n });
  }

  set(count: number, total?: number): void {
    this.update({ n: count, ...(total !== undefined ? { total } : {}) });
  }

  /** Sets any of count, total and description (e.g. from a remote progress event); throttled. */
  update(state: Partial<ProgressState>): void {
    if (state.n !== undefined) this.n = state.n;
    if (state.total !== undefined) this.total = state.total;
    if (state.description !== undefined) this.description = state.description;
    this.throttle.request();
  }

  done(): void {
    this.throttle.finish();
  }

  async *wrap<T>(items: Iterable<T> | AsyncIterable<T>): AsyncIterable<T> {
    if (this.total === undefined) {
      const size = sizeOf(items);
      if (size !== undefined) this.update({ total: size });
    }
    yield* tickEach(this, items);
  }

  state(): ProgressState {
    return { n: this.n, total: this.total, description: this.description, ...(this.unit === "bytes" ? { unit: this.unit } : {}) };
  }

  bundle(): MimeBundle {
    const text = progressText(this.state(), this.now() - this.startedAt);
    return { "text/plain": text, "text/html": progressHtml(this.state(), text) };
  }

  private publishUpdate(): void {
    this.sink.publish({
      msgType: "update_display_data",
      content: { data: this.bundle(), metadata: {}, transient: { display_id: this.displayId } },
    });
  }
}

/** The length of an array (or size of a Set or Map): a bar's total when none was given. */
export function sizeOf(items: unknown): number | undefined {
  const size = (items as { length?: unknown }).length ?? (items as { size?: unknown }).size;
  return typeof size === "number" ? size : undefined;
}

/** Yields each item and ticks `bar` after it; done() when the loop ends, also on break or throw. */
export async function* tickEach<T>(bar: Pick<ProgressBar, "tick" | "done">, items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  try {
    for await (const item of items as AsyncIterable<T>) {
      yield item;
      bar.tick();
    }
  } finally {
    bar.done();
  }
}

/** `label  42/100 [####      ] 42% 12.3 it/s ETA 4s`; without a total: `label  42 it 12.3 it/s`. */
export function progressText(state: ProgressState, elapsedMs: number): string {
  if (state.unit === "bytes") return bytesProgressText(state, elapsedMs);
  const parts: string[] = [];
  if (state.description) parts.push(state.description + " ");
  const rate = elapsedMs > 0 ? state.n / (elapsedMs / 1000) : undefined;
  const rateText = rate !== undefined && state.n > 0 ? `${formatRate(rate)} it/s` : undefined;
  if (state.total !== undefined && state.total > 0) {
    const fraction = Math.min(1, Math.max(0, state.n / state.total));
    const filled = Math.round(fraction * BAR_WIDTH);
    parts.push(`${state.n}/${state.total}`, `[${"#".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}]`, `${Math.floor(fraction * 100)}%`);
    if (rateText) parts.push(rateText);
    if (rate && state.n < state.total) parts.push(`ETA ${formatDuration((state.total - state.n) / rate)}`);
  } else {
    parts.push(`${state.n} it`);
    if (rateText) parts.push(rateText);
  }
  return parts.join(" ");
}

/** `label  1.5 GiB/3.0 GiB [##########          ] 50% 210 MiB/s ETA 7s` */
function bytesProgressText(state: ProgressState, elapsedMs: number): string {
  const parts: string[] = [];
  if (state.description) parts.push(state.description + " ");
  const rate = elapsedMs > 0 && state.n > 0 ? state.n / (elapsedMs / 1000) : undefined;
  if (state.total !== undefined && state.total > 0) {
    const fraction = Math.min(1, Math.max(0, state.n / state.total));
    const filled = Math.round(fraction * BAR_WIDTH);
    parts.push(`${formatBytes(state.n)}/${formatBytes(state.total)}`, `[${"#".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}]`, `${Math.floor(fraction * 100)}%`);
  } else {
    parts.push(formatBytes(state.n));
  }
  if (rate) parts.push(`${formatBytes(rate)}/s`);
  if (rate && state.total !== undefined && state.n < state.total) parts.push(`ETA ${formatDuration((state.total - state.n) / rate)}`);
  return parts.join(" ");
}

/** 1536 -> "1.5 KiB", 3221225472 -> "3.0 GiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function progressHtml(state: ProgressState, text: string): string {
  const value = state.total !== undefined && state.total > 0 ? ` value="${Math.min(state.n, state.total)}" max="${state.total}"` : "";
  return (
    `<div class="farlab-progress" style="display:flex;align-items:center;gap:0.5em;font-family:monospace">` +
    `<progress${value} style="width:20em"></progress><span>${escapeHtml(text)}</span></div>`
  );
}

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate >= 1 ? rate.toFixed(1) : rate.toFixed(2);
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
