/**
 * Typings of the "farlab" module and the global `display`, served to the cell compiler as a
 * virtual package `<cwd>/node_modules/farlab` (kernel/executor/tslab.ts), so that cells type-check
 * in any notebook folder. The display types are the contract files themselves, read from the
 * package's sources (they hold types only); without them the names are typed `any`.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const CONTRACT_FILES = ["api-types", "types"] as const;

function readContract(name: string): string | undefined {
  // dist/kernel/executor -> kernel/display (built) or kernel/executor -> kernel/display (tsx).
  for (const dir of [path.join(__dirname, "../../../kernel/display"), path.join(__dirname, "../display")]) {
    try {
      return fs.readFileSync(path.join(dir, `${name}.ts`), "utf8");
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

export function farlabTypings(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of CONTRACT_FILES) {
    const text = readContract(name);
    if (text !== undefined) files[`${name}.d.ts`] = text;
  }
  const typed = Object.keys(files).length === CONTRACT_FILES.length;
  const head = typed
    ? `import type { DisplayApi, DisplayHandle, ProgressBar, ProgressOptions, PlotlyOptions } from "./api-types";\n`
    : `type DisplayApi = any; type DisplayHandle = any; type ProgressBar = any; type ProgressOptions = any; type PlotlyOptions = any;\n`;
  files["index.d.ts"] =
    head +
    `export type { DisplayApi, DisplayHandle, ProgressBar, ProgressOptions, PlotlyOptions };\n` +
    `export declare const display: DisplayApi;\n` +
    `export declare function newDisplay(): DisplayHandle;\n` +
    `export declare function progress(options?: ProgressOptions | number): ProgressBar;\n` +
    `/** A plotly figure that displays itself (last expression of a cell, or display(figure)). */\n` +
    `export declare class Figure {\n` +
    `  constructor(spec: { data: unknown[]; layout?: unknown; config?: unknown }, options?: PlotlyOptions);\n` +
    `  readonly data: unknown[];\n  readonly layout: unknown;\n  readonly config: unknown;\n}\n` +
    `declare global {\n  /** farlab's display API (also \`import { display } from "farlab"\`). */\n  const display: DisplayApi;\n` +
    `  /** Ask the user for a line of input through the frontend (Jupyter stdin); password hides it. */\n` +
    `  function input(prompt?: string, options?: { password?: boolean }): Promise<string>;\n}\n`;
  return files;
}
