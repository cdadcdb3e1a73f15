/**
 * Magic lines -> validated ParsedMagic (grammar: shared/MAGICS.md "Grammar"; the decisions it
 * leaves open are in docs/magics.md). Everything here is pure: it runs before any handler, so a
 * usage error stops a cell before anything is sent to an agent.
 */
import { MagicUsageError } from "./errors";
import { acceptedOptions, flagText, magicLabel, usageLine } from "./help";
import { isVariableName, nearestName } from "./names";
import { tokenize, type Token } from "./tokenizer";
import type { MagicSpec, OptionKind, OptionSpec, ParsedMagic } from "./types";
import { ACCEPTED_DURATION, ACCEPTED_SIZE, parseDuration, parseInteger, parseNumber, parseSize } from "./units";

/** A line that starts a magic, split into its parts (not yet checked against any spec). */
export interface MagicLine {
  name: string;
  /** `%%name` (cell magic) rather than `%name`. */
  isCell: boolean;
  /** The text after the name. */
  args: string;
  /** The whole line as typed. */
  line: string;
  /** `%name?`: the user asks for help. */
  help: boolean;
}

/** A magic line starts with % (or %%) directly followed by a letter, at the start of the line. */
const MAGIC_START = /^%%?[A-Za-z]/;
const MAGIC_NAME = /^([A-Za-z][A-Za-z0-9_-]*)(\??)$/;

export function isMagicLine(line: string): boolean {
  return MAGIC_START.test(line);
}

/** Splits `%%name args` / `%name args`; undefined when the line is not a magic line. */
export function splitMagicLine(line: string): MagicLine | undefined {
  if (!isMagicLine(line)) return undefined;
  const isCell = line.startsWith("%%");
  const afterPercent = line.slice(isCell ? 2 : 1);
  const nameEnd = afterPercent.search(/\s|$/);
  const word = afterPercent.slice(0, nameEnd);
  const match = MAGIC_NAME.exec(word);
  if (!match) {
    throw new MagicUsageError(
      `${isCell ? "%%" : "%"}${word} is not a valid magic name: a magic name is letters, digits, ` +
        `_ and -, followed by a space before its arguments (see %lsmagic)`,
    );
  }
  return { name: match[1], isCell, args: afterPercent.slice(nameEnd), line, help: match[2] === "?" };
}

/** Whether the invocation asks for help (`%name?` or `--help`) instead of running. */
export function wantsHelp(magic: MagicLine): boolean {
  if (magic.help) return true;
  try {
    return tokenize(magic.args).some((token) => token.raw === "--help");
  } catch {
    return false; // malformed arguments: parseMagic reports them, with the magic's name
  }
}

/** Parses and validates one invocation against its handler's spec. Throws MagicUsageError. */
export function parseMagic(
  spec: MagicSpec,
  magic: MagicLine,
  cellBody?: { body: string; bodyStartLine: number },
): ParsedMagic {
  const label = magicLabel(magic.name, magic.isCell);
  const fail = (what: string): never => {
    throw new MagicUsageError(`${label}: ${what}`);
  };
  const parsed: ParsedMagic = {
    name: spec.name,
    isCell: magic.isCell,
    positionals: [],
    options: {},
    flags: new Set(),
    inputs: [],
    line: magic.line,
    ...(cellBody ?? {}),
  };

  let tokens: Token[];
  try {
    tokens = tokenize(magic.args);
  } catch (error) {
    if (error instanceof MagicUsageError) fail(error.message);
    throw error;
  }

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token.raw === "-i" || token.raw === "-o") {
      readDataMove(spec, parsed, token.raw, tokens[++i], fail);
    } else if (/^-{1,2}[A-Za-z]/.test(token.raw)) {
      parsed.flags.add(readFlag(spec, token.raw, fail));
    } else if (OPTION_KEY.test(token.raw) && !token.expression) {
      readOption(spec, parsed, token, fail);
    } else {
      parsed.positionals.push(token.value);
    }
  }

  checkPositionals(spec, magic, parsed.positionals, fail);
  return parsed;
}

/** `key=value` as typed: a name, then `=` outside quotes (so `"a=b"` is a positional). */
const OPTION_KEY = /^([A-Za-z_][A-Za-z0-9_-]*)=/;

function readOption(spec: MagicSpec, parsed: ParsedMagic, token: Token, fail: (what: string) => never): void {
  const key = (OPTION_KEY.exec(token.raw) as RegExpExecArray)[1];
  // The key has no quotes, so the unquoted value is what follows it in the token's value.
  const value = token.value.slice(key.length + 1);
  const optionSpec = findOption(spec, key, (what) => {
    // A positional that happens to contain `=` must be quoted; say so where positionals exist.
    const takesArguments = (spec.positionals ?? [0, 0])[1] > 0;
    return fail(takesArguments ? `${what}; to pass ${token.raw} as an argument, quote it: "${token.raw}"` : what);
  });
  if (key in parsed.options) fail(`option ${key}= is given twice`);
  if (value === "" && !token.quoted) {
    fail(`option ${key}= has no value (write ${key}=VALUE without spaces around =, or ${key}="" for an empty one)`);
  }
  parsed.options[key] = convertValue(optionSpec, value, fail);
}

function readDataMove(
  spec: MagicSpec,
  parsed: ParsedMagic,
  which: "-i" | "-o",
  argument: Token | undefined,
  fail: (what: string) => never,
): void {
  const isInputs = which === "-i";
  if (isInputs ? !spec.acceptsInputs : !spec.acceptsOutput) {
    fail(`${which} is not accepted here (${acceptedOptions(spec)})`);
  }
  const what = isInputs ? "a comma-separated list of local variable names, e.g. -i a,b" : "a variable name, e.g. -o result";
  if (argument === undefined || (!argument.quoted && argument.raw.startsWith("-"))) {
    fail(`${which} needs ${what}`);
  }
  if (isInputs) {
    const names = argument.value.split(",").map((name) => name.trim());
    for (const name of names) {
      if (!isVariableName(name)) fail(`-i ${argument.value}: '${name}' is not a variable name; -i takes ${what}`);
    }
    for (const name of names) if (!parsed.inputs.includes(name)) parsed.inputs.push(name);
  } else {
    if (parsed.output !== undefined) fail(`-o is given twice (${parsed.output} and ${argument.value})`);
    if (!isVariableName(argument.value)) {
      fail(`-o ${argument.value}: not a valid variable name (letters, digits and _, not starting with a digit, not a keyword)`);
    }
    parsed.output = argument.value;
  }
}

function readFlag(spec: MagicSpec, raw: string, fail: (what: string) => never): string {
  const dashes = raw.startsWith("--") ? 2 : 1;
  const [name, value] = raw.slice(dashes).split(/=(.*)/s);
  if (spec.flags.some((flag) => flag.name === name)) {
    if (value !== undefined) fail(`${flagText(name)} is a flag and takes no value (write ${flagText(name)} alone)`);
    if (dashes === 1 && name.length > 1) fail(`write --${name} with two dashes`);
    return name;
  }
  if (spec.options.some((option) => option.name === name)) {
    fail(`${name} is an option, not a flag: write ${name}=VALUE`);
  }
  const suggestion = nearestName(name, spec.flags.map((flag) => flag.name));
  fail(
    `unknown flag ${raw.split("=")[0]}.` +
      (suggestion ? ` Did you mean ${flagText(suggestion)}?` : "") +
      ` (${acceptedOptions(spec)})`,
  );
}

function findOption(spec: MagicSpec, key: string, fail: (what: string) => never): OptionSpec {
  const found = spec.options.find((option) => option.name === key);
  if (found) return found;
  if (spec.flags.some((flag) => flag.name === key)) {
    fail(`${key} is a flag and takes no value: write ${flagText(key)}`);
  }
  const suggestion = nearestName(key, spec.options.map((option) => option.name));
  return fail(`unknown option ${key}=.` + (suggestion ? ` Did you mean ${suggestion}=?` : "") + ` (${acceptedOptions(spec)})`);
}

type OptionValue = ParsedMagic["options"][string];

function convertValue(option: OptionSpec, value: string, fail: (what: string) => never): OptionValue {
  const type: OptionKind = option.type;
  const shown = `${option.name}=${value}`;
  const reject = (accepted: string): never => fail(`${shown} is not accepted: expected ${accepted}`);
  switch (type.kind) {
    case "string":
      return value;
    case "enum": {
      const lower = value.toLowerCase();
      const aliases = type.aliases ?? {};
      const canonical =
        type.values.find((v) => v.toLowerCase() === lower) ??
        Object.entries(aliases).find(([alias]) => alias.toLowerCase() === lower)?.[1];
      if (canonical !== undefined) return canonical;
      const suggestion = nearestName(value, [...type.values, ...Object.keys(aliases)]);
      const aliasText = Object.keys(aliases).length > 0 ? ` (or ${Object.keys(aliases).join(", ")})` : "";
      return reject(`one of ${type.values.join(", ")}${aliasText}` + (suggestion ? `; did you mean ${suggestion}?` : ""));
    }
    case "int":
    case "number": {
      const number = type.kind === "int" ? parseInteger(value) : parseNumber(value);
      const what = type.kind === "int" ? "a whole number" : "a number";
      if (number === undefined) return reject(`${what}${rangeText(type)}`);
      if ((type.min !== undefined && number < type.min) || (type.max !== undefined && number > type.max)) {
        return fail(`${shown} is out of range: expected ${what}${rangeText(type)}`);
      }
      return number;
    }
    case "bool": {
      const lower = value.toLowerCase();
      if (lower === "true" || lower === "false") return lower === "true";
      return reject("true or false");
    }
    case "size":
      return parseSize(value) ?? reject(ACCEPTED_SIZE);
    case "duration":
      return parseDuration(value) ?? reject(ACCEPTED_DURATION);
    case "list": {
      const items = value.split(",").map((item) => item.trim());
      if (items.some((item) => item === "")) return reject("a comma-separated list without empty items, e.g. a,b");
      return items;
    }
  }
}

function rangeText(type: { min?: number; max?: number }): string {
  if (type.min !== undefined && type.max !== undefined) return ` from ${type.min} to ${type.max}`;
  if (type.min !== undefined) return ` of at least ${type.min}`;
  if (type.max !== undefined) return ` of at most ${type.max}`;
  return "";
}

function checkPositionals(spec: MagicSpec, magic: MagicLine, positionals: string[], fail: (what: string) => never): void {
  const usage = `usage: ${usageLine(spec, magic.isCell)}`;
  if (spec.subcommands && spec.subcommands.length > 0) {
    const subcommand = positionals[0];
    const list = spec.subcommands.join(", ");
    if (subcommand === undefined) fail(`missing subcommand: one of ${list} (${usage})`);
    if (!spec.subcommands.includes(subcommand)) {
      const suggestion = nearestName(subcommand, spec.subcommands);
      fail(`unknown subcommand '${subcommand}'.` + (suggestion ? ` Did you mean '${suggestion}'?` : "") + ` Subcommands: ${list}`);
    }
  }
  const [min, max] = spec.positionals ?? [0, 0];
  if (positionals.length < min) {
    fail(`missing argument${min - positionals.length > 1 ? "s" : ""} (${usage})`);
  }
  if (positionals.length > max) {
    const extra = positionals[max];
    const looksLikeSpacedOption = positionals.some((word) => word.startsWith("=") || word.endsWith("="));
    const hint = looksLikeSpacedOption ? "; write options as key=value without spaces around =" : "";
    const takes = max === 0 ? "it takes no arguments" : `it takes at most ${max}`;
    fail(`unexpected argument '${extra}': ${takes}${hint} (${usage})`);
  }
}
