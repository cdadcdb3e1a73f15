/**
 * value -> MIME bundle: the one conversion used for execute_result and display(value), locally
 * and in the remote TypeScript runtime. Objects that know their bundle (Deno's
 * `[Symbol.for("Jupyter.display")]()`) use it; everything else is `util.inspect` text, exactly as
 * Node's REPL prints it (`42`, `'farlab'`, `[ 2, 4, 6 ]`).
 */
import * as util from "node:util";
import { JUPYTER_DISPLAY, type MimeBundle, type MimeMetadata, type SelfDisplaying } from "./types";

export interface DisplayBundle {
  data: MimeBundle;
  metadata: MimeMetadata;
}

export function isSelfDisplaying(value: unknown): value is SelfDisplaying {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as Partial<SelfDisplaying>)[JUPYTER_DISPLAY] === "function"
  );
}

export function inspectText(value: unknown): string {
  return util.inspect(value);
}

export function toBundle(value: unknown): DisplayBundle {
  if (isSelfDisplaying(value)) {
    const own = value[JUPYTER_DISPLAY]();
    const { data, metadata } = "data" in own && typeof own.data === "object" && own.data !== null
      ? (own as { data: MimeBundle; metadata?: MimeMetadata })
      : { data: own as MimeBundle, metadata: undefined };
    // Every bundle carries text/plain, even if the object forgot it.
    const text = typeof data["text/plain"] === "string" ? data["text/plain"] : inspectText(value);
    return { data: { ...data, "text/plain": text }, metadata: metadata ?? {} };
  }
  return { data: { "text/plain": inspectText(value) }, metadata: {} };
}
