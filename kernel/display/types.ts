/**
 * The one display path shared by local cells, the remote runtimes and the magics.
 *
 * A MimeBundle always carries "text/plain". Objects may carry their own bundle through
 * `[Symbol.for("Jupyter.display")]()` (Deno's convention), so no central switch over library
 * types is needed.
 */
export type MimeBundle = { "text/plain": string } & Record<string, unknown>;
export type MimeMetadata = Record<string, unknown>;

export const JUPYTER_DISPLAY = Symbol.for("Jupyter.display");

/** Anything that knows how to display itself. */
export interface SelfDisplaying {
  [JUPYTER_DISPLAY](): MimeBundle | { data: MimeBundle; metadata?: MimeMetadata };
}

/** The iopub-level messages a display produces. Content fields use Jupyter's names. */
export type DisplayMessage =
  | {
      msgType: "display_data";
      content: { data: MimeBundle; metadata: MimeMetadata; transient?: { display_id?: string } };
    }
  | {
      msgType: "update_display_data";
      content: { data: MimeBundle; metadata: MimeMetadata; transient: { display_id: string } };
    }
  | { msgType: "clear_output"; content: { wait: boolean } };

/** Where displays go: the kernel's iopub (local cells), or a runner's channel (remote cells). */
export interface DisplaySink {
  publish(message: DisplayMessage): void;
}
