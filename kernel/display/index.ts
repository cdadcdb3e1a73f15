/** kernel/display: the one display path (see types.ts). Safe to bundle: no fs, zeromq or tslab. */
export { toBundle, isSelfDisplaying, inspectText, type DisplayBundle } from "./bundle";
export { createDisplayApi, newDisplayId, type DisplayApiOptions } from "./display-api";
export { ProgressDisplay, progressText, formatDuration, type ProgressDisplayOptions, type ProgressState } from "./progress";
export { PlotlyFigure, PlotlyLibrary, sessionPlotlyLibrary, PLOTLY_MIME, type PlotlyFigureSpec } from "./plotly";
export { createTslabModule, type TslabModule, type TslabDisplay } from "./tslab-compat";
export { createFarlabModule, type FarlabModule } from "./farlab-module";
export * from "./types";
export type * from "./api-types";
