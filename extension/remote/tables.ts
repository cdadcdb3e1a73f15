/**
 * Small tables for %remote's reports: one description, two renderings, a text/plain one that
 * reads well in a terminal frontend (aligned columns) and a text/html one for notebooks.
 */
import { escapeHtml } from "../../kernel/display/progress";
import { JUPYTER_DISPLAY, type SelfDisplaying } from "../../kernel/display/types";

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  /** Shown instead of an empty table. */
  empty: string;
}

export function tableText(table: Table): string {
  if (table.rows.length === 0) return `${table.title}: ${table.empty}`;
  const widths = table.headers.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [`${table.title}:`, `  ${line(table.headers)}`, ...table.rows.map((r) => `  ${line(r)}`)].join("\n");
}

export function tableHtml(table: Table): string {
  const title = `<h4>${escapeHtml(table.title)}</h4>`;
  if (table.rows.length === 0) return `${title}<p>${escapeHtml(table.empty)}</p>`;
  const head = table.headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = table.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("");
  return `${title}<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/** A report made of a heading line and tables: the cell's value, shown as text and HTML. */
export function report(heading: string, tables: Table[]): SelfDisplaying & { toString(): string } {
  const text = [heading, ...tables.map(tableText)].filter(Boolean).join("\n\n");
  const html = `${heading ? `<p>${escapeHtml(heading)}</p>` : ""}${tables.map(tableHtml).join("")}`;
  return {
    [JUPYTER_DISPLAY]: () => ({ "text/plain": text, "text/html": html }),
    toString: () => text,
  };
}
