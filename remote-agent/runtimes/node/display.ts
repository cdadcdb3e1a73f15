/**
 * The `display` API inside the remote TypeScript runtime: the same DisplayApi as local cells
 * (kernel/display/api-types.ts), published through a DisplaySink that writes runner messages.
 * Progress bars are `progress` runner messages (the kernel draws and throttles them again).
 *
 * TODO(H2): when kernel/display exports its DisplayApi factory (createDisplayApi(sink)) and value
 * -> MimeBundle function, use them here instead of createDisplayApi/toBundle below.
 */
import * as util from "node:util";
import type { DisplayApi, DisplayHandle, ProgressBar, ProgressOptions } from "../../../kernel/display/api-types";
import { JUPYTER_DISPLAY, type DisplayMessage, type DisplaySink, type MimeBundle, type MimeMetadata } from "../../../kernel/display/types";
import type { RunnerChannel } from "./channel";

export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/** DisplaySink -> runner messages. */
export function runnerSink(channel: RunnerChannel): DisplaySink {
  return {
    publish(message: DisplayMessage) {
      switch (message.msgType) {
        case "display_data": {
          const displayId = message.content.transient?.display_id;
          channel.send({ type: "display", data: message.content.data, metadata: message.content.metadata, ...(displayId ? { displayId } : {}) });
          return;
        }
        case "update_display_data":
          channel.send({ type: "update_display", data: message.content.data, metadata: message.content.metadata, displayId: message.content.transient.display_id });
          return;
        case "clear_output":
          channel.send({ type: "clear_output", wait: message.content.wait });
      }
    },
  };
}

export function inspect(value: unknown): string {
  return util.inspect(value, { depth: 4, maxArrayLength: 100, breakLength: 100 });
}

function plotlyHtml(figure: unknown, id: string): string {
  const json = JSON.stringify(figure).replace(/<\//g, "<\\/");
  return (
    `<div id="${id}" style="width:100%;min-height:450px"></div>\n<script>(function(){var f=${json},el=document.getElementById(${JSON.stringify(id)});` +
    `if(window.Plotly){window.Plotly.newPlot(el,f.data,f.layout||{},f.config||{});}` +
    `else{el.textContent='plotly.js is not loaded on this page; the figure needs the plotly renderer.';}})();</script>`
  );
}

let counter = 0;
export function newId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** A value as a bundle: self-displaying objects give their own; others util.inspect. */
export function toBundle(value: unknown): { data: MimeBundle; metadata: MimeMetadata } {
  const own = (value as { [JUPYTER_DISPLAY]?: () => unknown } | null)?.[JUPYTER_DISPLAY];
  if (typeof own === "function") {
    const got = own.call(value) as MimeBundle | { data: MimeBundle; metadata?: MimeMetadata };
    if (got && typeof got === "object" && "data" in got && typeof got.data === "object" && got.data !== null) {
      const bundle = got as { data: MimeBundle; metadata?: MimeMetadata };
      return { data: { ...bundle.data, "text/plain": bundle.data["text/plain"] ?? inspect(value) }, metadata: bundle.metadata ?? {} };
    }
    return { data: { ...(got as MimeBundle), "text/plain": (got as MimeBundle)["text/plain"] ?? inspect(value) }, metadata: {} };
  }
  return { data: { "text/plain": inspect(value) }, metadata: {} };
}

function base64(data: Uint8Array | string): string {
  return typeof data === "string" ? data : Buffer.from(data).toString("base64");
}

export type ProgressFactory = (options?: ProgressOptions | number) => ProgressBar;

export function createDisplayApi(sink: DisplaySink, progress: ProgressFactory): DisplayApi {
  const show = (data: MimeBundle, metadata: MimeMetadata = {}, displayId?: string, update = false) => {
    if (update && displayId) {
      sink.publish({ msgType: "update_display_data", content: { data, metadata, transient: { display_id: displayId } } });
    } else {
      sink.publish({ msgType: "display_data", content: { data, metadata, ...(displayId ? { transient: { display_id: displayId } } : {}) } });
    }
  };
  const raw = (mime: string, data: unknown, text: string): MimeBundle => ({ [mime]: data, "text/plain": text });
  const display = ((value: unknown, options?: { displayId?: string; update?: boolean }) => {
    const { data, metadata } = toBundle(value);
    show(data, metadata, options?.displayId, options?.update ?? false);
  }) as DisplayApi;
  display.html = (html) => show(raw("text/html", html, "<HTML>"));
  display.markdown = (md) => show(raw("text/markdown", md, md));
  display.latex = (tex) => show(raw("text/latex", tex, tex));
  display.svg = (svg) => show(raw("image/svg+xml", svg, "<SVG>"));
  display.png = (data) => show(raw("image/png", base64(data), "<PNG image>"));
  display.jpeg = (data) => show(raw("image/jpeg", base64(data), "<JPEG image>"));
  display.json = (value) => show(raw("application/json", JSON.parse(JSON.stringify(value ?? null)), JSON.stringify(value, null, 2)));
  display.text = (text) => show({ "text/plain": String(text) });
  display.plotly = (figure) => {
    const json = JSON.parse(JSON.stringify(figure));
    show({ [PLOTLY_MIME]: json, "text/html": plotlyHtml(json, newId("farlab-plotly")), "text/plain": "<plotly figure>" });
  };
  display.raw = (mime, data, metadata) => show(raw(mime, data, `<${mime}>`), metadata ?? {});
  display.bundle = (data, metadata) => show(data, metadata ?? {});
  display.clear = (wait = false) => sink.publish({ msgType: "clear_output", content: { wait } });
  display.progress = progress;
  display.newDisplay = (): DisplayHandle => {
    const displayId = newId("farlab-display");
    let shown = false;
    const send = (data: MimeBundle, metadata: MimeMetadata = {}) => {
      show(data, metadata, displayId, shown);
      shown = true;
    };
    return {
      displayId,
      update: (value) => {
        const { data, metadata } = toBundle(value);
        send(data, metadata);
      },
      html: (html) => send(raw("text/html", html, "<HTML>")),
      markdown: (md) => send(raw("text/markdown", md, md)),
      text: (text) => send({ "text/plain": String(text) }),
      raw: (mime, data) => send(raw(mime, data, `<${mime}>`)),
    };
  };
  return display;
}
