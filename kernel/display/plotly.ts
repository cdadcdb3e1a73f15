/**
 * Plotly figures that carry their own bundle:
 *  - application/vnd.plotly.v1+json ({data, layout, config}) for frontends with plotly's renderer
 *    (JupyterLab with the extension, VS Code, nteract);
 *  - text/html for the others, working offline: plotly.js (about 4.8 MB, from the
 *    plotly.js-dist-min package) is inlined into the FIRST figure of a session only, guarded so
 *    that a page that already has window.Plotly does not load it twice; later figures carry a div
 *    and a small script that waits for window.Plotly. This keeps saved notebooks small, at the cost
 *    that clearing that first output removes the library from the page (docs/display.md);
 *    `includePlotlyJs: true` forces the library into a figure.
 *  - text/plain: a one-line summary.
 *
 * The library file is read lazily and only for the first figure; where it cannot be found (e.g. a
 * bundled remote runtime without node_modules) the HTML relies on window.Plotly being present.
 */
import { randomUUID } from "node:crypto";
import type { MimeBundle } from "./types";
import { JUPYTER_DISPLAY, type SelfDisplaying } from "./types";

export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

export interface PlotlyFigureSpec {
  data: unknown[];
  layout?: unknown;
  config?: unknown;
}

/** Remembers whether this session (process) has already sent plotly.js to the page. */
export class PlotlyLibrary {
  private sent = false;
  private cached: string | null | undefined;

  constructor(private readonly load: () => string | null = readPlotlyJs) {}

  /** The library's <script> for this figure, or "" when an earlier figure carried it. */
  scriptFor(force: boolean): string {
    if (this.sent && !force) return "";
    if (this.cached === undefined) this.cached = this.load();
    if (this.cached === null) return "";
    this.sent = true;
    // Shadow module/exports/define so that the UMD wrapper sets window.Plotly, also under
    // require.js (classic notebook).
    const guarded =
      `(function (module, exports, define) {\nif (window.Plotly) return;\n` +
      this.cached.replace(/<\/script/gi, "<\\/script") +
      `\n})();`;
    return `<script type="text/javascript">${guarded}</script>\n`;
  }

  get hasBeenSent(): boolean {
    return this.sent;
  }
}

function readPlotlyJs(): string | null {
  try {
    // Lazy: only the first figure pays for the 4.8 MB read, and bundles without fs never get here.
    const fs = require("node:fs") as typeof import("node:fs");
    return fs.readFileSync(require.resolve("plotly.js-dist-min/plotly.min.js"), "utf8");
  } catch {
    return null;
  }
}

/** The session's library state, shared by every display API of this process. */
export const sessionPlotlyLibrary = new PlotlyLibrary();

export class PlotlyFigure implements SelfDisplaying {
  readonly data: unknown[];
  readonly layout: unknown;
  readonly config: unknown;
  private rendered: MimeBundle | undefined;

  constructor(
    spec: PlotlyFigureSpec,
    private readonly options: { includePlotlyJs?: boolean; library?: PlotlyLibrary } = {},
  ) {
    if (!spec || !Array.isArray(spec.data)) {
      throw new TypeError("a plotly figure needs `data`, an array of traces, e.g. { data: [{ type: 'bar', y: [1, 2] }] }");
    }
    this.data = spec.data;
    this.layout = spec.layout ?? {};
    this.config = spec.config ?? {};
  }

  /** The bundle is made once, so a figure shown twice does not decide twice about plotly.js. */
  [JUPYTER_DISPLAY](): MimeBundle {
    this.rendered ??= {
      "text/plain": this.summary(),
      "text/html": this.html(),
      [PLOTLY_MIME]: { data: this.data, layout: this.layout, config: this.config },
    };
    return this.rendered;
  }

  summary(): string {
    const types = this.data.map((trace) => (trace as { type?: unknown })?.type ?? "scatter");
    const title = titleOf(this.layout);
    return `<Plotly figure: ${this.data.length} trace${this.data.length === 1 ? "" : "s"} (${types.join(", ")})${title ? ` "${title}"` : ""}>`;
  }

  private html(): string {
    const library = this.options.library ?? sessionPlotlyLibrary;
    const id = `farlab-plotly-${randomUUID()}`;
    const args = [id, this.data, this.layout, { responsive: true, ...(this.config as object) }].map(scriptJson).join(", ");
    const missing = scriptJson(
      "plotly.js is not loaded on this page: re-run the cell that showed the first figure, " +
        "or show this one with display.plotly(figure, { includePlotlyJs: true }).",
    );
    return (
      library.scriptFor(this.options.includePlotlyJs === true) +
      `<div id="${id}" class="farlab-plotly"></div>\n<script type="text/javascript">\n` +
      `(function () { var tries = 0; function draw() {\n` +
      `  if (window.Plotly) { window.Plotly.newPlot(${args}); return; }\n` +
      `  if (++tries < 50) { setTimeout(draw, 100); return; }\n` +
      `  var el = document.getElementById(${scriptJson(id)}); if (el) el.textContent = ${missing};\n` +
      `} draw(); })();\n</script>`
    );
  }
}

function titleOf(layout: unknown): string | undefined {
  const title = (layout as { title?: unknown } | undefined)?.title;
  if (typeof title === "string") return title;
  const text = (title as { text?: unknown } | undefined)?.text;
  return typeof text === "string" ? text : undefined;
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}
