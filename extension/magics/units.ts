/**
 * Values with units, as magics accept them (shared/MAGICS.md "Grammar"): sizes in MiB and
 * durations in milliseconds, the units Modal's TypeScript SDK uses. Each parser returns undefined
 * for text it does not accept; the caller words the error with the ACCEPTED_* text.
 */

/** MiB per unit. Decimal spellings (GB) are read as binary (GiB), as MAGICS.md says. */
const MIB_PER_SIZE_UNIT: Readonly<Record<string, number>> = {
  "": 1,
  k: 1 / 1024,
  kb: 1 / 1024,
  kib: 1 / 1024,
  m: 1,
  mb: 1,
  mib: 1,
  g: 1024,
  gb: 1024,
  gib: 1024,
  t: 1024 * 1024,
  tb: 1024 * 1024,
  tib: 1024 * 1024,
};

export const ACCEPTED_SIZE =
  "a number of MiB (512) or a number with a unit: KiB, MiB, GiB, TiB (KB, MB, GB, TB are read as " +
  "KiB, MiB, GiB, TiB), e.g. 512MiB, 16GiB, 1.5GiB";

const DECIMAL = String.raw`(?:\d+(?:_\d+)*(?:\.\d+)?|\.\d+)`;
const SIZE = new RegExp(`^(${DECIMAL})([a-z]*)$`, "i");

/** `512`, `512MiB`, `16GiB`, `16GB`, `1.5GiB` -> MiB (more than 0). */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text);
  if (!match) return undefined;
  const factor = MIB_PER_SIZE_UNIT[match[2].toLowerCase()];
  if (factor === undefined) return undefined;
  const mib = parseDecimal(match[1]) * factor;
  return mib > 0 && Number.isFinite(mib) ? mib : undefined;
}

const MS_PER_DURATION_UNIT: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

export const ACCEPTED_DURATION =
  "a number of seconds (300) or numbers with units ms, s, m, h, d, e.g. 90s, 10m, 2h, 1h30m, 1.5h";

const PLAIN_SECONDS = new RegExp(`^${DECIMAL}$`);
const DURATION_PART = new RegExp(`(${DECIMAL})(ms|s|m|h|d)`, "iy");

/** `300` (s), `90s`, `10m`, `2h`, `1h30m` -> milliseconds (more than 0). */
export function parseDuration(text: string): number | undefined {
  let ms: number;
  if (PLAIN_SECONDS.test(text)) {
    ms = parseDecimal(text) * 1000;
  } else {
    ms = 0;
    DURATION_PART.lastIndex = 0;
    let end = 0;
    for (let match = DURATION_PART.exec(text); match; match = DURATION_PART.exec(text)) {
      ms += parseDecimal(match[1]) * MS_PER_DURATION_UNIT[match[2].toLowerCase()];
      end = DURATION_PART.lastIndex;
    }
    if (end === 0 || end !== text.length) return undefined;
  }
  return ms > 0 && Number.isFinite(ms) ? ms : undefined;
}

/** Digits with optional `_` separators (as in JavaScript: 100_000), sign allowed. */
export function parseInteger(text: string): number | undefined {
  if (!/^[+-]?\d+(?:_\d+)*$/.test(text)) return undefined;
  const value = Number(text.replace(/_/g, ""));
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A decimal number (1, -2.5, .5, 1e3, 100_000). */
export function parseNumber(text: string): number | undefined {
  if (!new RegExp(`^[+-]?${DECIMAL}(?:[eE][+-]?\\d+)?$`).test(text)) return undefined;
  const value = Number(text.replace(/_/g, ""));
  return Number.isFinite(value) ? value : undefined;
}

function parseDecimal(text: string): number {
  return Number(text.replace(/_/g, ""));
}
