/**
 * The magic framework's contract: a parsed invocation, the option specs a handler declares,
 * and the context a handler runs in. Grammar: ../shared/MAGICS.md ("Grammar").
 */
import type { DisplayApi } from "../../kernel/display/api-types";

/** A value an option accepts; the parser converts and validates by kind. */
export type OptionKind =
  | { kind: "string" }
  | { kind: "enum"; values: readonly string[]; aliases?: Record<string, string> }
  | { kind: "int"; min?: number; max?: number }
  | { kind: "number"; min?: number; max?: number }
  | { kind: "bool" } // key=true|false
  | { kind: "size" } // -> MiB (number)
  | { kind: "duration" } // -> milliseconds (number)
  | { kind: "list" }; // comma-separated -> string[]

export interface OptionSpec {
  name: string;
  type: OptionKind;
  help: string;
}

export interface FlagSpec {
  name: string; // without the leading "--"
  help: string;
}

export interface MagicSpec {
  name: string;
  /** "line": %name; "cell": %%name; "both": either. */
  kind: "line" | "cell" | "both";
  help: string;
  /** Subcommands (e.g. %remote status|connect|...) as positional[0], if any. */
  subcommands?: readonly string[];
  options: readonly OptionSpec[];
  flags: readonly FlagSpec[];
  /** Whether -i a,b and -o name are accepted. */
  acceptsInputs?: boolean;
  acceptsOutput?: boolean;
  /** Positional argument count accepted, [min, max] (max may be Infinity). Default [0, 0]. */
  positionals?: readonly [number, number];
  /** Synopsis of the positionals for help and error messages, e.g. "FN INPUTS" or "create NAME | list". */
  usage?: string;
}

/** One invocation after parsing and validation against its MagicSpec. */
export interface ParsedMagic {
  name: string;
  isCell: boolean;
  positionals: string[];
  options: Record<string, string | number | boolean | string[]>;
  flags: Set<string>;
  inputs: string[]; // -i a,b
  output?: string; // -o name
  body?: string; // cell magics: the lines after the first
  /** Cell magics: the 1-based line of the cell where the body starts (to map remote line numbers). */
  bodyStartLine?: number;
  /** The magic line as typed, for messages. */
  line: string;
}

/** What a magic handler may do while it runs; bound to the current cell. */
export interface MagicContext {
  display: DisplayApi;
  stream(name: "stdout" | "stderr", text: string): void;
  input(prompt: string, password: boolean): Promise<string>;
  /** Local (kernel-side) variables of the notebook. */
  locals: {
    has(name: string): boolean;
    get(name: string): unknown;
    /** Declares/overwrites a local TypeScript variable (typed any) visible to later cells. */
    set(name: string, value: unknown): Promise<void>;
    /** Evaluate a TypeScript expression in the notebook's scope (e.g. %map's INPUTS). */
    evaluate(expression: string): Promise<unknown>;
  };
  /** Aborted when the user interrupts the kernel. */
  signal: AbortSignal;
}

export interface MagicHandler {
  spec: MagicSpec;
  /** The returned value (if not undefined) becomes the cell's execute_result, or -o's value. */
  run(magic: ParsedMagic, ctx: MagicContext): Promise<unknown>;
}
