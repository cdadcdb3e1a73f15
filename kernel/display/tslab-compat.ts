/**
 * tslab's display API (`import * as tslab from "tslab"; tslab.display.html(...)`,
 * `tslab.newDisplay()`), served by farlab's DisplayApi so that notebooks written for tslab run
 * unchanged. The shape follows tslab/dist/public.d.ts (1.0.22).
 */
import type { DisplayApi, DisplayHandle } from "./api-types";

export interface TslabDisplay {
  javascript(s: string): void;
  html(s: string): void;
  markdown(s: string): void;
  latex(s: string): void;
  svg(s: string): void;
  png(b: Uint8Array): void;
  jpeg(b: Uint8Array): void;
  gif(b: Uint8Array): void;
  pdf(b: Uint8Array): void;
  text(s: string): void;
  raw(contentType: string, b: string | Uint8Array): void;
}

export interface TslabModule {
  display: TslabDisplay;
  newDisplay(): TslabDisplay;
  versions: { tslab: string; typescript: string; node: string };
}

/** `raw` of either API; both send one MIME type (binary data as base64). */
function tslabDisplay(raw: (mime: string, data: unknown) => void): TslabDisplay {
  return {
    javascript: (s) => raw("application/javascript", s),
    html: (s) => raw("text/html", s),
    markdown: (s) => raw("text/markdown", s),
    latex: (s) => raw("text/latex", s),
    svg: (s) => raw("image/svg+xml", s),
    png: (b) => raw("image/png", b),
    jpeg: (b) => raw("image/jpeg", b),
    gif: (b) => raw("image/gif", b),
    pdf: (b) => raw("application/pdf", b),
    text: (s) => raw("text/plain", s),
    raw: (mime, b) => raw(mime, b),
  };
}

export function createTslabModule(display: DisplayApi, versions: { tslab: string; typescript: string }): TslabModule {
  return {
    display: tslabDisplay((mime, data) => display.raw(mime, data)),
    newDisplay: () => {
      const handle: DisplayHandle = display.newDisplay();
      return tslabDisplay((mime, data) => handle.raw(mime, data));
    },
    versions: { ...versions, node: process.version },
  };
}
