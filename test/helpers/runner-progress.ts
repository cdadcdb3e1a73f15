/**
 * What every runtime's progress() must send, checked the same way for each language: throttled
 * `progress` messages over a long loop whose last one is closed with the whole count, and a final
 * closed message for a bar driven by hand.
 */
import assert from "node:assert/strict";
import type { JobMessage, JobOutcome } from "./runner-harness";

type ProgressMessage = Extract<JobMessage, { type: "progress" }>;

/** A bar over `n` items: at least 2 and fewer than n / 1000 messages, the last closed at n of n. */
export function assertThrottledBar(out: JobOutcome, n: number, description: string): ProgressMessage[] {
  const bars = out.of("progress");
  assert.ok(bars.length >= 2 && bars.length < n / 1000, `${bars.length} progress messages for ${n} items`);
  const last = bars.at(-1)!;
  assert.deepEqual({ n: last.n, total: last.total, closed: last.closed, description: last.description }, { n, total: n, closed: true, description });
  return bars;
}

/** The last progress message of a bar driven by hand: closed, with its count and total. */
export function assertFinalBar(out: JobOutcome, expected: { n: number; total: number }): void {
  const final = out.of("progress").at(-1)!;
  assert.deepEqual({ n: final.n, total: final.total, closed: final.closed }, { ...expected, closed: true });
}
