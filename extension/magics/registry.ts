/**
 * Magic handlers by name and form. `%remote` (line) and `%%remote` (cell) are different magics
 * with the same name, so a name may be registered once per form; a spec of kind "both" takes
 * both forms. Handlers register themselves when their module is loaded (registerMagic), into the
 * default registry that createMagicRouter() uses; tests may build their own MagicRegistry.
 */
import { nearestName } from "./names";
import { labelsOf, magicLabel } from "./help";
import { createLsmagicHandler } from "./lsmagic";
import type { MagicHandler, MagicSpec } from "./types";

export type MagicForm = "line" | "cell";

export class MagicRegistry {
  private readonly handlers = new Map<string, MagicHandler>();

  constructor() {
    this.register(createLsmagicHandler(this));
  }

  /** Adds a handler; a name already taken in the same form, or a malformed spec, is a programming error. */
  register(handler: MagicHandler): void {
    checkSpec(handler.spec);
    for (const form of formsOf(handler.spec)) {
      const key = keyOf(handler.spec.name, form);
      if (this.handlers.has(key)) {
        throw new Error(`magic ${magicLabel(handler.spec.name, form === "cell")} is already registered`);
      }
    }
    for (const form of formsOf(handler.spec)) this.handlers.set(keyOf(handler.spec.name, form), handler);
  }

  get(name: string, form: MagicForm): MagicHandler | undefined {
    return this.handlers.get(keyOf(name, form));
  }

  /** Every handler once, sorted by name (line form before cell form of the same name). */
  list(): MagicHandler[] {
    return [...new Set(this.handlers.values())].sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  }

  /** Every label (`%%remote`, `%map`, ...) that can be typed, sorted. */
  labels(): string[] {
    return this.list().flatMap((handler) => labelsOf(handler.spec)).sort();
  }

  /** The nearest registered label to a mistyped one, preferring the form that was typed. */
  nearest(name: string, form: MagicForm): string | undefined {
    const sameForm = this.list()
      .filter((handler) => formsOf(handler.spec).includes(form))
      .map((handler) => handler.spec.name);
    const found = nearestName(name, sameForm);
    if (found !== undefined) return magicLabel(found, form === "cell");
    const other: MagicForm = form === "cell" ? "line" : "cell";
    const otherForm = this.list()
      .filter((handler) => formsOf(handler.spec).includes(other))
      .map((handler) => handler.spec.name);
    const inOther = nearestName(name, otherForm);
    return inOther === undefined ? undefined : magicLabel(inOther, other === "cell");
  }
}

/** The registry that registerMagic fills and createMagicRouter() reads. */
export const defaultRegistry = new MagicRegistry();

/** Registers a magic handler (e.g. extension/remote's %%remote and %remote) for every router. */
export function registerMagic(handler: MagicHandler): void {
  defaultRegistry.register(handler);
}

function formsOf(spec: MagicSpec): MagicForm[] {
  return spec.kind === "both" ? ["line", "cell"] : [spec.kind];
}

function keyOf(name: string, form: MagicForm): string {
  return `${form}:${name}`;
}

/** Catches spec mistakes at registration, where the author sees them, not in a user's cell. */
function checkSpec(spec: MagicSpec): void {
  const problem = (what: string): never => {
    throw new Error(`magic spec ${spec.name}: ${what}`);
  };
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(spec.name)) problem("name must be letters, digits, _ and -, starting with a letter");
  const names = [...spec.options.map((o) => o.name), ...spec.flags.map((f) => f.name)];
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined) problem(`${duplicate} is declared twice (options and flags share one namespace)`);
  for (const option of spec.options) {
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(option.name)) problem(`option name ${option.name} is not letters, digits, _ and -`);
  }
  for (const flag of spec.flags) {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(flag.name)) problem(`flag name ${flag.name} is not letters, digits, _ and -`);
    if (flag.name === "help") problem("--help is reserved: every magic answers it with its help");
    if (flag.name === "i" || flag.name === "o") problem(`-${flag.name} is reserved for moving variables`);
  }
  const [min, max] = spec.positionals ?? [0, 0];
  if (!(min >= 0 && max >= min)) problem(`positionals [${min}, ${max}] is not a range`);
  if (spec.subcommands?.length && min < 1) problem("a magic with subcommands needs at least one positional");
}
