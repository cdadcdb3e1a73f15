/**
 * The DisplayApi (api-types.ts) on top of a DisplaySink. One implementation for local cells
 * (sink = the executor's iopub messages), the remote TypeScript runtime (sink = runner messages)
 * and the magics. Everything here must stay free of fs, zeromq and tslab: H6 bundles it.
 */
import { randomUUID } from "node:crypto";
import type { DisplayApi, DisplayHandle, PlotlyOptions, ProgressBar, ProgressOptions } from "./api-types";
import { toBundle, type DisplayBundle } from "./bundle";
import { PlotlyFigure, sessionPlotlyLibrary, type PlotlyFigureSpec, type PlotlyLibrary } from "./plotly";
import { ProgressDisplay, type ProgressDisplayOptions } from "./progress";
import type { DisplaySink, MimeBundle, MimeMetadata } from "./types";

export interface DisplayApiOptions {
  plotlyLibrary?: PlotlyLibrary;
  /** Clock and scheduler for progress bars (tests). */
  progress?: Pick<ProgressDisplayOptions, "now" | "schedule">;
}

export function newDisplayId(): string {
  return `farlab-display-${randomUUID()}`;
}

function textBundle(mime: string, data: unknown, text: string): MimeBundle {
  return { "text/plain": text, [mime]: data };
}

function toBase64(data: Uint8Array | string): string {
  return typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

function rawBundle(mime: string, data: unknown): MimeBundle {
  if (mime === "text/plain") return { "text/plain": String(data) };
  const binary = data instanceof Uint8Array;
  return textBundle(mime, binary ? toBase64(data) : data, `<${mime}${binary ? `, ${data.byteLength} bytes` : ""}>`);
}

export function createDisplayApi(sink: DisplaySink, options: DisplayApiOptions = {}): DisplayApi {
  const library = options.plotlyLibrary ?? sessionPlotlyLibrary;

  function show(bundle: DisplayBundle, displayId?: string, update = false): void {
    if (update) {
      if (!displayId) throw new TypeError("display(value, { update: true }) needs a displayId");
      sink.publish({ msgType: "update_display_data", content: { ...bundle, transient: { display_id: displayId } } });
    } else {
      sink.publish({ msgType: "display_data", content: { ...bundle, ...(displayId ? { transient: { display_id: displayId } } : {}) } });
    }
  }

  const bundle = (data: MimeBundle, metadata: MimeMetadata = {}) => show({ data, metadata });

  const display = ((value: unknown, opts?: { displayId?: string; update?: boolean }) =>
    show(toBundle(value), opts?.displayId, opts?.update === true)) as DisplayApi;

  Object.assign(display, {
    html: (html: string) => bundle(textBundle("text/html", html, "<HTML>")),
    markdown: (md: string) => bundle({ "text/plain": md, "text/markdown": md }),
    latex: (tex: string) => bundle({ "text/plain": tex, "text/latex": tex }),
    svg: (svg: string) => bundle(textBundle("image/svg+xml", svg, "<SVG image>")),
    png: (data: Uint8Array | string) => bundle(textBundle("image/png", toBase64(data), "<PNG image>")),
    jpeg: (data: Uint8Array | string) => bundle(textBundle("image/jpeg", toBase64(data), "<JPEG image>")),
    json: (value: unknown) => bundle({ "text/plain": JSON.stringify(value, null, 2) ?? "undefined", "application/json": value as object }),
    text: (text: string) => bundle({ "text/plain": text }),
    plotly: (figure: PlotlyFigureSpec, plotlyOptions?: PlotlyOptions) =>
      display(new PlotlyFigure(figure, { includePlotlyJs: plotlyOptions?.includePlotlyJs, library })),
    raw: (mime: string, data: unknown, metadata?: MimeMetadata) => bundle(rawBundle(mime, data), metadata),
    bundle: (data: MimeBundle, metadata?: MimeMetadata) => bundle({ ...data, "text/plain": data["text/plain"] ?? "" }, metadata),
    clear: (wait = false) => sink.publish({ msgType: "clear_output", content: { wait } }),
    progress: (progressOptions?: ProgressOptions | number): ProgressBar =>
      new ProgressDisplay(sink, {
        ...(typeof progressOptions === "number" ? { total: progressOptions } : progressOptions),
        ...options.progress,
      }),
    newDisplay: (): DisplayHandle => createHandle(show),
  } satisfies Omit<DisplayApi, never>);

  return display;
}

/** A display that updates in place: the first call shows it, later calls replace it. */
function createHandle(show: (bundle: DisplayBundle, displayId?: string, update?: boolean) => void): DisplayHandle {
  const displayId = newDisplayId();
  let shown = false;
  const put = (b: DisplayBundle) => {
    show(b, displayId, shown);
    shown = true;
  };
  return {
    displayId,
    update: (value: unknown) => put(toBundle(value)),
    html: (html: string) => put({ data: textBundle("text/html", html, "<HTML>"), metadata: {} }),
    markdown: (md: string) => put({ data: { "text/plain": md, "text/markdown": md }, metadata: {} }),
    text: (text: string) => put({ data: { "text/plain": text }, metadata: {} }),
    raw: (mime: string, data: unknown) => put({ data: rawBundle(mime, data), metadata: {} }),
  };
}
