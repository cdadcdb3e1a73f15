/**
 * Replaces secret values in a session's output with `****` before the output is journalled or
 * sent. Output arrives in arbitrary chunks, so a value may be split across two of them: per
 * stream, the masker holds back the longest tail of what it has seen that could still be the
 * start of a value (at most the longest value's length - 1 characters), and releases it with the
 * next chunk or at the end of the cell (`flush`). Text that cannot start a value is never held.
 *
 * Values shorter than MIN_LENGTH characters are not masked: replacing every "1" or "ok" in the
 * output would destroy it and hide nothing worth hiding (documented in docs/volumes.md).
 */
export const MASK = "****";
export const MIN_LENGTH = 3;

export class SecretMasker {
  /** Longest first, so a value containing another is masked whole. */
  private readonly values: string[];
  private readonly held = new Map<string, string>();

  constructor(values: Iterable<string>) {
    this.values = [...new Set([...values].filter((v) => v.length >= MIN_LENGTH))].sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.values.length > 0;
  }

  /** The part of `text` (after what was held for `stream`) that can be shown now, masked. */
  push(stream: string, text: string): string {
    if (!this.active) return text;
    const masked = this.mask((this.held.get(stream) ?? "") + text);
    const keep = this.partialTail(masked);
    this.held.set(stream, masked.slice(masked.length - keep));
    return masked.slice(0, masked.length - keep);
  }

  /** Whatever is held for `stream` (the cell ended: it cannot be the start of a value any more). */
  flush(stream: string): string {
    const rest = this.held.get(stream) ?? "";
    this.held.delete(stream);
    return rest;
  }

  /** Masks every value in a string, or in every string inside a JSON-like value. */
  mask<T>(value: T): T {
    if (!this.active) return value;
    if (typeof value === "string") {
      let text: string = value;
      for (const secret of this.values) if (text.includes(secret)) text = text.split(secret).join(MASK);
      return text as T;
    }
    if (Array.isArray(value)) return value.map((item) => this.mask(item)) as T;
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.mask(v)])) as T;
    }
    return value;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some value. */
  private partialTail(text: string): number {
    let best = 0;
    for (const secret of this.values) {
      for (let n = Math.min(secret.length - 1, text.length); n > best; n--) {
        if (text.endsWith(secret.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
