/**
 * What `require("farlab")` / `import { display, progress, Figure } from "farlab"` gives a cell,
 * locally and in the remote TypeScript runtime. Its typings for the cell compiler are made by
 * kernel/executor/farlab-typings.ts and must list the same names.
 */
import type { DisplayApi } from "./api-types";
import { PlotlyFigure } from "./plotly";

export interface FarlabModule {
  display: DisplayApi;
  newDisplay: DisplayApi["newDisplay"];
  progress: DisplayApi["progress"];
  /** A plotly figure object: the last expression of a cell or display(figure) shows it. */
  Figure: typeof PlotlyFigure;
}

export function createFarlabModule(display: DisplayApi): FarlabModule {
  return {
    display,
    newDisplay: () => display.newDisplay(),
    progress: (options) => display.progress(options),
    Figure: PlotlyFigure,
  };
}
