/**
 * Texts about a magic, made from its MagicSpec so they cannot drift from what the parser accepts:
 * the usage line and option list shown in error messages, by `%name --help` / `%name?`, and the
 * one-line summaries of `%lsmagic`.
 */
import { inspect } from "node:util";
import { JUPYTER_DISPLAY, type MimeBundle, type SelfDisplaying } from "../../kernel/display/types";
import type { MagicSpec, OptionKind } from "./types";

/** `%%remote` or `%map`: the magic as the user types it. */
export function magicLabel(name: string, isCell: boolean): string {
  return `${isCell ? "%%" : "%"}${name}`;
}

/** The forms a spec may be written in, cell form first. */
export function labelsOf(spec: MagicSpec): string[] {
  if (spec.kind === "both") return [magicLabel(spec.name, true), magicLabel(spec.name, false)];
  return [magicLabel(spec.name, spec.kind === "cell")];
}

/**
 * A spec's `subcommands` and `usage` from its table of subcommands (name -> { usage }), so the
 * synopsis ("create NAME | list | ...") lists exactly the subcommands the parser accepts.
 */
export function subcommandSpec(table: Readonly<Record<string, { usage: string }>>): Required<Pick<MagicSpec, "subcommands" | "usage">> {
  return {
    subcommands: Object.keys(table),
    usage: Object.values(table)
      .map((subcommand) => subcommand.usage)
      .join(" | "),
  };
}

/** `%map FN INPUTS [options] [-i NAMES] [-o NAME]` */
export function usageLine(spec: MagicSpec, isCell: boolean): string {
  const parts = [magicLabel(spec.name, isCell)];
  if (spec.usage) parts.push(spec.usage);
  else if (spec.subcommands?.length) parts.push(spec.subcommands.join("|"));
  if (spec.options.length > 0 || spec.flags.length > 0) parts.push("[options]");
  if (spec.acceptsInputs) parts.push("[-i NAMES]");
  if (spec.acceptsOutput) parts.push("[-o NAME]");
  return parts.join(" ");
}

/** `agent=, cpu=, gpu=; flags: --fresh; -i NAMES, -o NAME`, or that it takes none. */
export function acceptedOptions(spec: MagicSpec): string {
  const pieces: string[] = [];
  if (spec.options.length > 0) {
    pieces.push(`valid options: ${[...spec.options].map((o) => `${o.name}=`).sort().join(", ")}`);
  }
  if (spec.flags.length > 0) pieces.push(`flags: ${[...spec.flags].map((f) => flagText(f.name)).sort().join(", ")}`);
  const moves = [spec.acceptsInputs ? "-i NAMES" : "", spec.acceptsOutput ? "-o NAME" : ""].filter(Boolean);
  if (moves.length > 0) pieces.push(`also ${moves.join(", ")}`);
  return pieces.length > 0 ? pieces.join("; ") : "it takes no options";
}

/** How a flag is written: one-letter flags take one dash (`-r`), others two (`--fresh`). */
export function flagText(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** What an option kind accepts, for help listings. */
export function kindHint(type: OptionKind): string {
  switch (type.kind) {
    case "string":
      return "TEXT";
    case "enum":
      return type.values.join("|");
    case "int":
      return "N";
    case "number":
      return "NUMBER";
    case "bool":
      return "true|false";
    case "size":
      return "SIZE";
    case "duration":
      return "DURATION";
    case "list":
      return "A,B,...";
  }
}

/** The full help of one magic, as plain text. */
export function helpText(spec: MagicSpec): string {
  const lines = labelsOf(spec).map((label) => `Usage: ${usageLine(spec, label.startsWith("%%"))}`);
  lines.push("", spec.help);
  const rows: Array<[string, string]> = [
    ...spec.options.map((o): [string, string] => [`${o.name}=${kindHint(o.type)}`, o.help]),
    ...spec.flags.map((f): [string, string] => [flagText(f.name), f.help]),
  ];
  if (spec.acceptsInputs) rows.push(["-i NAMES", "send these local variables (comma-separated) first"]);
  if (spec.acceptsOutput) rows.push(["-o NAME", "assign the result to local variable NAME instead of showing it"]);
  if (rows.length > 0) {
    const width = Math.max(...rows.map(([left]) => left.length));
    lines.push("", "Options:", ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`));
  }
  return lines.join("\n");
}

/**
 * A value that shows as its text: through Jupyter.display where the display path honours it, and
 * through util.inspect (Node's text/plain) where it does not, so help never shows as an object dump.
 */
export class PlainText implements SelfDisplaying {
  constructor(readonly text: string) {}

  [JUPYTER_DISPLAY](): MimeBundle {
    return { "text/plain": this.text };
  }

  [inspect.custom](): string {
    return this.text;
  }

  toString(): string {
    return this.text;
  }
}
