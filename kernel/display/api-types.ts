/** The user-facing display API (global `display`, `import { display } from "farlab"`). */
import type { MimeBundle, MimeMetadata } from "./types";

export interface DisplayHandle {
  readonly displayId: string;
  /** Replace the content of this display in place (update_display_data). */
  update(value: unknown): void;
  html(html: string): void;
  markdown(md: string): void;
  text(text: string): void;
  raw(mime: string, data: unknown): void;
}

export interface ProgressOptions {
  total?: number;
  description?: string;
  /** Minimum milliseconds between updates; default 100 (about 10 updates a second). */
  minIntervalMs?: number;
  /** What is counted: items (default; "12.3 it/s") or bytes ("1.5/3.0 GiB 210 MiB/s"). */
  unit?: "items" | "bytes";
}

export interface ProgressBar {
  readonly displayId: string;
  /** Advance by n (default 1). */
  tick(n?: number): void;
  /** Set the absolute count. */
  set(count: number, total?: number): void;
  /** Final update (always published). */
  done(): void;
  /** Iterate over an iterable, ticking once per item. */
  wrap<T>(items: Iterable<T> | AsyncIterable<T>): AsyncIterable<T>;
}

export interface PlotlyOptions {
  /** Inline plotly.js into this figure's text/html even if an earlier figure carried it. */
  includePlotlyJs?: boolean;
}

export interface DisplayApi {
  /** Display any value: self-displaying objects use their bundle; others util.inspect. */
  (value: unknown, options?: { displayId?: string; update?: boolean }): void;
  html(html: string): void;
  markdown(md: string): void;
  latex(tex: string): void;
  svg(svg: string): void;
  png(data: Uint8Array | string): void; // bytes or base64
  jpeg(data: Uint8Array | string): void;
  json(value: unknown): void;
  text(text: string): void;
  /**
   * A plotly figure: { data, layout?, config? }. Its text/html fallback carries plotly.js only for
   * the first figure of a session, unless includePlotlyJs is true (docs/display.md).
   */
  plotly(figure: { data: unknown[]; layout?: unknown; config?: unknown }, options?: PlotlyOptions): void;
  raw(mime: string, data: unknown, metadata?: MimeMetadata): void;
  bundle(data: MimeBundle, metadata?: MimeMetadata): void;
  clear(wait?: boolean): void;
  progress(options?: ProgressOptions | number): ProgressBar;
  /** A display that updates in place. */
  newDisplay(): DisplayHandle;
}
