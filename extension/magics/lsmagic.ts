/** `%lsmagic`: the magics a notebook can use, with one line of help each (IPython's %lsmagic). */
import { labelsOf, PlainText } from "./help";
import type { MagicRegistry } from "./registry";
import type { MagicHandler } from "./types";

export function createLsmagicHandler(registry: MagicRegistry): MagicHandler {
  return {
    spec: {
      name: "lsmagic",
      kind: "line",
      help: "List the available magics with one line of help each.",
      options: [],
      flags: [],
    },
    async run() {
      return new PlainText(listing(registry));
    },
  };
}

function listing(registry: MagicRegistry): string {
  const rows = registry.list().flatMap((handler) =>
    labelsOf(handler.spec).map((label): [string, string] => [label, firstLine(handler.spec.help)]),
  );
  const cell = rows.filter(([label]) => label.startsWith("%%"));
  const line = rows.filter(([label]) => !label.startsWith("%%"));
  const width = Math.max(...rows.map(([label]) => label.length));
  const block = (title: string, entries: Array<[string, string]>) => [
    `${title}:`,
    ...(entries.length > 0 ? entries.map(([label, help]) => `  ${label.padEnd(width)}  ${help}`) : ["  (none)"]),
  ];
  return [
    ...block("Cell magics (first line of a cell)", cell),
    "",
    ...block("Line magics (a line of their own)", line),
    "",
    "Help on one magic: %name --help (or %name?).",
  ].join("\n");
}

function firstLine(text: string): string {
  return text.split("\n")[0].trim();
}
