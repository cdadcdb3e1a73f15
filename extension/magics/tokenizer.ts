/**
 * Splits the argument text of a magic line into tokens, shell-style but small:
 *
 * - tokens are separated by unquoted whitespace;
 * - '...' and "..." quote (the quotes are removed; they may sit inside a token, so
 *   key="a b" is one token with value `key=a b`); inside "..." only \" and \\ are escapes, inside
 *   '...' nothing is; an unterminated quote is a MagicUsageError;
 * - a token that starts with ( [ or { is an expression (e.g. %map's INPUTS: `(range(100))`,
 *   `[1, 2, 3]`): it runs until whitespace outside all brackets, its brackets must balance, the
 *   quotes inside it ('...', "...", `...`) are kept verbatim and may hold brackets and spaces.
 *
 * `raw` keeps the token as typed, so the parser can tell `--fresh` from `"--fresh"` (a quoted
 * token is always a positional value) and `key=v` from `"key=v"`.
 */
import { MagicUsageError } from "./errors";

export interface Token {
  /** The token's value: quotes removed; expression tokens verbatim. */
  value: string;
  /** The token as typed. */
  raw: string;
  /** Whether any part of the token was quoted (so `key=""` is a deliberate empty value). */
  quoted: boolean;
  /** Whether the token is a bracketed expression. */
  expression: boolean;
}

const CLOSER_OF: Readonly<Record<string, string>> = { "(": ")", "[": "]", "{": "}" };
const CLOSERS = new Set(Object.values(CLOSER_OF));

function isSpace(char: string): boolean {
  return /\s/.test(char);
}

/** An excerpt of the text from `from`, for error messages. */
function excerpt(text: string, from: number): string {
  const rest = text.slice(from);
  return rest.length > 40 ? `${rest.slice(0, 40)}...` : rest;
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    if (isSpace(text[i])) {
      i++;
      continue;
    }
    const start = i;
    if (text[i] in CLOSER_OF) {
      i = scanExpression(text, i);
      const raw = text.slice(start, i);
      tokens.push({ value: raw, raw, quoted: false, expression: true });
      continue;
    }
    let value = "";
    let quoted = false;
    while (i < text.length && !isSpace(text[i])) {
      const char = text[i];
      if (char === "'" || char === '"') {
        const { content, end } = readQuoted(text, i);
        value += content;
        quoted = true;
        i = end;
      } else {
        value += char;
        i++;
      }
    }
    tokens.push({ value, raw: text.slice(start, i), quoted, expression: false });
  }
  return tokens;
}

/** Reads a quoted string starting at the quote at `open`; returns its content and the index after it. */
function readQuoted(text: string, open: number): { content: string; end: number } {
  const quote = text[open];
  let content = "";
  for (let i = open + 1; i < text.length; i++) {
    const char = text[i];
    if (char === quote) return { content, end: i + 1 };
    if (quote === '"' && char === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\")) {
      content += text[i + 1];
      i++;
      continue;
    }
    content += char;
  }
  throw new MagicUsageError(
    `unterminated ${quote} quote in: ${excerpt(text, open)} (close it with ${quote}; ` +
      `to put a ${quote} inside a value, quote the value with ${quote === '"' ? "'" : '"'} instead)`,
  );
}

/**
 * Scans a bracketed expression starting at `open`; returns the index just after it (at
 * whitespace outside all brackets, or the end of the text).
 */
function scanExpression(text: string, open: number): number {
  const expected: string[] = [];
  let i = open;
  while (i < text.length) {
    const char = text[i];
    if (expected.length === 0 && isSpace(char)) return i;
    if (char === "'" || char === '"' || char === "`") {
      i = skipJsString(text, i);
      continue;
    }
    if (char in CLOSER_OF) {
      expected.push(CLOSER_OF[char]);
    } else if (CLOSERS.has(char)) {
      const want = expected.pop();
      if (want !== char) {
        throw new MagicUsageError(
          want === undefined
            ? `unbalanced brackets in ${excerpt(text, open)}: '${char}' closes nothing`
            : `unbalanced brackets in ${excerpt(text, open)}: expected '${want}' but found '${char}'`,
        );
      }
    }
    i++;
  }
  if (expected.length > 0) {
    throw new MagicUsageError(
      `unbalanced brackets in ${excerpt(text, open)}: missing '${expected.reverse().join("")}' at the end`,
    );
  }
  return i;
}

/** Skips a JavaScript string literal ('...', "..." or `...`, backslash escapes); returns the index after it. */
function skipJsString(text: string, open: number): number {
  const quote = text[open];
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === "\\") {
      i++;
    } else if (text[i] === quote) {
      return i + 1;
    }
  }
  throw new MagicUsageError(`unterminated ${quote} string in the expression ${excerpt(text, open)}`);
}
