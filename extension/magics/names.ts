/**
 * Names in magic lines: "did you mean" suggestions for misspelt ones, and the identifier check for
 * `-i a,b` / `-o name` (they name TypeScript variables, and Python ones on the remote side).
 */
import { distance } from "fastest-levenshtein";

/**
 * The candidate nearest to `input` (case-insensitive edit distance), or undefined when none is
 * close enough to be a plausible typo: within max(2, length/3) edits, or one a prefix of the other
 * (`mem` -> `memory`, `gpus` -> `gpu`).
 */
export function nearestName(input: string, candidates: Iterable<string>): string | undefined {
  const typed = input.toLowerCase();
  const limit = Math.max(2, Math.floor(typed.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase();
    const edits = distance(typed, lower);
    const prefix = typed.length >= 2 && (lower.startsWith(typed) || typed.startsWith(lower));
    if ((edits <= limit || prefix) && edits < bestDistance) {
      best = candidate;
      bestDistance = edits;
    }
  }
  return best;
}

/** Words that cannot name a variable in TypeScript (strict mode) or Python. */
const RESERVED = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends " +
    "false finally for function if import in instanceof new null return super switch this throw " +
    "true try typeof var void while with implements interface let package private protected " +
    "public static yield await arguments eval undefined NaN Infinity " +
    // Python keywords that are not TypeScript ones: -i names become Python variables remotely.
    "None True False and as assert async def del elif except from global is lambda nonlocal not " +
    "or pass raise"
  ).split(" "),
);

/**
 * Whether `name` can name a variable on both sides: ASCII letters, digits and `_`, not starting
 * with a digit, not a keyword of TypeScript or Python (`$` is left out: Python has no such names).
 */
export function isVariableName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !RESERVED.has(name);
}
