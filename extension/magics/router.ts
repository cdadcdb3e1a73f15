/**
 * Runs cells that contain magics (the executor calls createMagicRouter() once and asks
 * isMagicCell for every cell). A run has two phases:
 *  1. plan: split the cell, find every magic's handler, parse and validate every magic line;
 *     any usage error is thrown here, before anything runs or is sent to an agent;
 *  2. run the pieces in order: TypeScript groups through the executor's runTypeScript, magics
 *     through their handlers; `-o NAME` is applied here, for every magic alike.
 * The cell's value is the last piece's (undefined when that piece has none, e.g. after -o).
 */
import { containsMagic, splitCell, type CellPiece } from "./cell";
import { MagicUsageError } from "./errors";
import { helpText, magicLabel, PlainText } from "./help";
import { parseMagic, splitMagicLine, wantsHelp } from "./parser";
import { defaultRegistry, type MagicForm, type MagicRegistry } from "./registry";
import type { MagicContext, MagicHandler, ParsedMagic } from "./types";

export interface MagicRouter {
  /** Whether the cell holds any magic line (and so must go through run). */
  isMagicCell(code: string): boolean;
  run(
    code: string,
    ctx: MagicContext,
    runTypeScript: (src: string) => Promise<unknown>,
  ): Promise<{ value: unknown } | undefined>;
}

type Step =
  | { kind: "typescript"; source: string }
  | { kind: "help"; handler: MagicHandler }
  | { kind: "magic"; handler: MagicHandler; parsed: ParsedMagic; lineNumber: number };

export function createMagicRouter(registry: MagicRegistry = defaultRegistry): MagicRouter {
  return {
    isMagicCell: containsMagic,
    async run(code, ctx, runTypeScript) {
      const steps = plan(registry, code, ctx);
      let result: { value: unknown } | undefined;
      for (const step of steps) {
        ctx.signal.throwIfAborted();
        result = await runStep(step, ctx, runTypeScript);
      }
      return result;
    },
  };
}

/** Phase 1: everything that can be checked before running; throws MagicUsageError. */
function plan(registry: MagicRegistry, code: string, ctx: MagicContext): Step[] {
  const pieces = splitCell(code);
  // Line numbers help where a cell has several pieces; a cell magic's errors are on its first line.
  const manyPieces = pieces.length > 1;
  const steps: Step[] = [];
  /** Variables that earlier pieces may define, so -i of later magics is checked when they run. */
  let earlierTypeScript = false;
  const earlierOutputs = new Set<string>();
  for (const piece of pieces) {
    if (piece.kind === "typescript") {
      steps.push({ kind: "typescript", source: piece.source });
      earlierTypeScript = true;
      continue;
    }
    try {
      const step = planMagic(registry, piece);
      if (step.kind === "magic") {
        if (!earlierTypeScript) {
          checkInputsExist(step.parsed, ctx, earlierOutputs);
        }
        if (step.parsed.output !== undefined) earlierOutputs.add(step.parsed.output);
      }
      steps.push(step);
    } catch (error) {
      if (error instanceof MagicUsageError && manyPieces) {
        throw new MagicUsageError(`line ${piece.lineNumber}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }
  return steps;
}

function planMagic(registry: MagicRegistry, piece: Extract<CellPiece, { kind: "magic" }>): Step {
  const magic = splitMagicLine(piece.text);
  if (magic === undefined) throw new Error(`not a magic line: ${piece.text}`); // splitCell guarantees one
  const form: MagicForm = magic.isCell ? "cell" : "line";
  const label = magicLabel(magic.name, magic.isCell);
  const handler = registry.get(magic.name, form);
  if (handler === undefined) {
    const other = registry.get(magic.name, magic.isCell ? "line" : "cell");
    if (other !== undefined) {
      throw new MagicUsageError(
        magic.isCell
          ? `${label}: %${magic.name} is a line magic: write it as %${magic.name} on a line of its own`
          : `${label}: %%${magic.name} is a cell magic: write %%${magic.name} as the first line of the cell, with the code below it`,
      );
    }
    const suggestion = registry.nearest(magic.name, form);
    throw new MagicUsageError(
      `unknown magic ${label}.` +
        (suggestion ? ` Did you mean ${suggestion}?` : "") +
        ` Valid magics: ${registry.labels().join(", ")} (%lsmagic lists them with help)`,
    );
  }
  if (magic.isCell && piece.body === undefined) {
    throw new MagicUsageError(
      `${label}: a cell magic must be the first line of the cell` +
        (handler.spec.kind === "both" ? ` (or write %${magic.name} for the line form)` : ""),
    );
  }
  if (wantsHelp(magic)) return { kind: "help", handler };
  return { kind: "magic", handler, parsed: parseMagic(handler.spec, magic, piece.body), lineNumber: piece.lineNumber };
}

function checkInputsExist(parsed: ParsedMagic, ctx: MagicContext, definedEarlier: ReadonlySet<string>): void {
  const missing = parsed.inputs.filter((name) => !definedEarlier.has(name) && !ctx.locals.has(name));
  if (missing.length > 0) {
    throw new MagicUsageError(
      `${magicLabel(parsed.name, parsed.isCell)}: -i ${parsed.inputs.join(",")}: ` +
        `no local variable named ${missing.join(", ")} (define it in a cell first)`,
    );
  }
}

/** Phase 2: one piece. */
async function runStep(
  step: Step,
  ctx: MagicContext,
  runTypeScript: (src: string) => Promise<unknown>,
): Promise<{ value: unknown } | undefined> {
  switch (step.kind) {
    case "typescript":
      return { value: await runTypeScript(step.source) };
    case "help":
      return { value: new PlainText(helpText(step.handler.spec)) };
    case "magic": {
      // Variables made by TypeScript earlier in this cell exist only now.
      checkInputsExist(step.parsed, ctx, new Set());
      const value = await step.handler.run(step.parsed, ctx);
      if (step.parsed.output !== undefined) {
        await ctx.locals.set(step.parsed.output, value);
        return undefined;
      }
      return value === undefined ? undefined : { value };
    }
  }
}
