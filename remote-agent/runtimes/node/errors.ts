/**
 * Errors of TypeScript cells as Jupyter's ename / evalue / traceback, with stack positions mapped
 * back to the cell's own lines (`at f (<cell 3>:2:9)`) and the runner's own frames removed.
 */
import { inspectText } from "../../../kernel/display/bundle";

export type CellError = { ename: string; evalue: string; traceback: string[] };

/** Maps a script position of cell `filename` back to the cell source, if it has one there. */
export type PositionMapper = (filename: string, line: number, column: number) => { line: number; column: number } | undefined;

const CELL_POSITION = /(<cell \d+>):(\d+):(\d+)/;
const RUNNER_FILE = __filename;

function mapFrame(frame: string, map: PositionMapper): string | undefined {
  if (frame.includes(RUNNER_FILE) || /\(node:(internal|vm)|at node:(internal|vm)/.test(frame)) return undefined;
  const match = CELL_POSITION.exec(frame);
  if (!match) return frame;
  const position = map(match[1], Number(match[2]), Number(match[3]));
  if (!position) return undefined; // the wrapper's own code, not a line of the cell
  return frame.replace(CELL_POSITION, `${match[1]}:${position.line}:${position.column}`);
}

export function formatCellError(error: unknown, map: PositionMapper): CellError {
  if (!(error instanceof Error)) {
    const ename = error !== null && typeof error === "object" ? (error.constructor?.name ?? "Error") : "Error";
    const evalue = inspectText(error);
    return { ename, evalue, traceback: [`Uncaught ${evalue}`] };
  }
  const ename = error.name || error.constructor?.name || "Error";
  const evalue = error.message;
  const frames = (error.stack ?? "")
    .split("\n")
    .filter((line) => /^\s+at /.test(line))
    .map((line) => mapFrame(line, map))
    .filter((line): line is string => line !== undefined);
  return { ename, evalue, traceback: [`${ename}: ${evalue}`, ...frames] };
}

/** The JSON value of a cell's result for -o, or why there is none. */
export function jsonValue(value: unknown, what = "the value of the last expression"): { value?: unknown; valueError?: string } {
  if (value === undefined) return {};
  try {
    const text = JSON.stringify(value, function (key: string, v: unknown) {
      const where = key === "" ? "" : ` at key ${JSON.stringify(key)}`;
      if (typeof v === "function") throw new TypeError(`a function${where} has no JSON form`);
      if (typeof v === "symbol") throw new TypeError(`a symbol${where} has no JSON form`);
      if (v instanceof Map || v instanceof Set) throw new TypeError(`a ${v.constructor.name}${where} has no JSON form (convert it to an object or array)`);
      return v;
    });
    return { value: JSON.parse(text) };
  } catch (e) {
    const kind = value === null ? "null" : typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
    return { valueError: `${what} (${kind}) is not JSON-serialisable: ${(e as Error).message}` };
  }
}
