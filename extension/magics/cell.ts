/**
 * Splits a cell into the pieces the router runs in order: one cell magic (first line `%%name`,
 * the rest is its body), or a sequence of line magics and groups of consecutive TypeScript lines.
 * Purely syntactic: which magics exist is the router's business.
 */
import { isMagicLine } from "./parser";

export type CellPiece =
  | {
      kind: "typescript";
      /**
       * The group's lines, preceded by one empty line per cell line above the group, so that line
       * numbers in TypeScript diagnostics and stack traces are the cell's line numbers.
       */
      source: string;
      /** 1-based line of the cell where the group starts. */
      startLine: number;
    }
  | {
      kind: "magic";
      /** The magic line as typed (split and checked by the router, which knows the line number). */
      text: string;
      /** 1-based line of the cell. */
      lineNumber: number;
      /** Set for a cell magic on the first line; a `%%name` line elsewhere has none (misplaced). */
      body?: { body: string; bodyStartLine: number };
    };

const LINE_BREAK = /\r?\n/;

/** Whether any line of the code is a magic line (`%` or `%%` followed by a letter at the line start). */
export function containsMagic(code: string): boolean {
  return code.split(LINE_BREAK).some(isMagicLine);
}

export function splitCell(code: string): CellPiece[] {
  const lines = code.split(LINE_BREAK);
  // Leading blank lines are ignored (as IPython does), so `%%remote` after an empty line still counts.
  const first = lines.findIndex((line) => line.trim() !== "");
  if (first >= 0 && lines[first].startsWith("%%") && isMagicLine(lines[first])) {
    const body = { body: lines.slice(first + 1).join("\n"), bodyStartLine: first + 2 };
    return [{ kind: "magic", text: lines[first], lineNumber: first + 1, body }];
  }

  const pieces: CellPiece[] = [];
  let groupStart = -1;
  const flushTypeScript = (end: number) => {
    if (groupStart < 0) return;
    const group = lines.slice(groupStart, end);
    // A group of blank lines between magics is not worth a TypeScript run (nor a cell value).
    if (group.some((line) => line.trim() !== "")) {
      pieces.push({ kind: "typescript", source: "\n".repeat(groupStart) + group.join("\n"), startLine: groupStart + 1 });
    }
    groupStart = -1;
  };
  lines.forEach((line, index) => {
    if (isMagicLine(line)) {
      flushTypeScript(index);
      pieces.push({ kind: "magic", text: line, lineNumber: index + 1 });
    } else if (groupStart < 0) {
      groupStart = index;
    }
  });
  flushTypeScript(lines.length);
  return pieces;
}
