/**
 * Turns iopub messages into nbformat 4 outputs, the way nbclient and JupyterLab build a saved
 * notebook: consecutive stream text of one name is merged (with "\r" overwrites applied, so a
 * progress line is stored as the user last saw it), update_display_data rewrites every output
 * with that display_id in the whole notebook, clear_output(wait=true) clears before the next output.
 */
import type { JupyterMessage } from "../protocol/wire";

export type NotebookOutput =
  | { output_type: "stream"; name: string; text: string }
  | { output_type: "display_data"; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: "execute_result"; execution_count: number | null; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

type RichOutput = Extract<NotebookOutput, { data: unknown }>;

/** Display ids across the notebook (an update may target a display made by an earlier cell). */
export class DisplayRegistry {
  private readonly byId = new Map<string, Set<RichOutput>>();

  add(displayId: string, output: RichOutput): void {
    let outputs = this.byId.get(displayId);
    if (!outputs) this.byId.set(displayId, (outputs = new Set()));
    outputs.add(output);
  }

  update(displayId: string, data: Record<string, unknown>, metadata: Record<string, unknown>): void {
    for (const output of this.byId.get(displayId) ?? []) {
      output.data = data;
      output.metadata = metadata;
    }
  }

  forget(outputs: NotebookOutput[]): void {
    for (const set of this.byId.values()) for (const output of outputs) set.delete(output as RichOutput);
  }
}

/** The outputs of one cell being executed. */
export class CellOutputCollector {
  readonly outputs: NotebookOutput[] = [];
  private clearBeforeNext = false;

  constructor(
    private readonly displays: DisplayRegistry,
    private readonly executionCount: () => number | null = () => null,
  ) {}

  handle(message: JupyterMessage): void {
    const content = message.content as Record<string, any>;
    const displayId: string | undefined = content.transient?.display_id;
    switch (message.header.msg_type) {
      case "clear_output":
        if (content.wait) this.clearBeforeNext = true;
        else this.clear();
        return;
      case "update_display_data":
        if (displayId) this.displays.update(displayId, content.data ?? {}, content.metadata ?? {});
        return;
      case "stream":
        return this.addStream(String(content.name), String(content.text ?? ""));
      case "display_data":
      case "execute_result": {
        if (displayId) this.displays.update(displayId, content.data ?? {}, content.metadata ?? {});
        const output: RichOutput =
          message.header.msg_type === "display_data"
            ? { output_type: "display_data", data: content.data ?? {}, metadata: content.metadata ?? {} }
            : {
                output_type: "execute_result",
                execution_count: content.execution_count ?? this.executionCount(),
                data: content.data ?? {},
                metadata: content.metadata ?? {},
              };
        this.add(output);
        if (displayId) this.displays.add(displayId, output);
        return;
      }
      case "error":
        return this.add({ output_type: "error", ename: String(content.ename), evalue: String(content.evalue), traceback: content.traceback ?? [] });
      default:
        return; // status, execute_input, comm messages: not outputs
    }
  }

  private addStream(name: string, text: string): void {
    this.clearPending();
    const last = this.outputs[this.outputs.length - 1];
    if (last?.output_type === "stream" && last.name === name) last.text = applyCarriageReturns(last.text + text);
    else this.outputs.push({ output_type: "stream", name, text: applyCarriageReturns(text) });
  }

  private add(output: NotebookOutput): void {
    this.clearPending();
    this.outputs.push(output);
  }

  private clearPending(): void {
    if (!this.clearBeforeNext) return;
    this.clearBeforeNext = false;
    this.clear();
  }

  private clear(): void {
    this.displays.forget(this.outputs);
    this.outputs.length = 0;
  }
}

/**
 * What a terminal shows for text with "\r": each "\r" returns to the start of the line and the
 * following text overwrites it. A trailing "\r" is kept, so text appended later still overwrites.
 */
export function applyCarriageReturns(text: string): string {
  if (!text.includes("\r")) return text;
  return text
    .replace(/\r+\n/g, "\n")
    .split("\n")
    .map((line) => {
      if (!line.includes("\r")) return line;
      let shown = "";
      for (const segment of line.split("\r")) shown = segment + shown.slice(segment.length);
      return line.endsWith("\r") ? shown + "\r" : shown;
    })
    .join("\n");
}
