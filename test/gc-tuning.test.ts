/**
 * Collections around transfers (remote-agent/gc-tuning.ts), observed through Node's 'gc'
 * performance entries: a kernel-side transfer scavenges as its bytes go by, one young-generation
 * collection per 4 MiB. (What this buys in memory and CPU is measured by bench/transfer.ts.)
 */
import assert from "node:assert/strict";
import { constants, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { test } from "node:test";
import { collectTransferGarbage, duringTransfer } from "../remote-agent/gc-tuning";

const MIB = 1024 * 1024;

/** The collections (by kind) that ran while `body` ran. */
async function collectionsDuring(body: () => Promise<void>): Promise<{ minor: number; major: number }> {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ["gc"] });
  try {
    await body();
    // 'gc' entries are delivered asynchronously: wait for the marker collection's entry.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
  } finally {
    observer.disconnect();
  }
  const kindOf = (entry: PerformanceEntry) => (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
  return {
    minor: entries.filter((e) => kindOf(e) === constants.NODE_PERFORMANCE_GC_MINOR).length,
    major: entries.filter((e) => kindOf(e) === constants.NODE_PERFORMANCE_GC_MAJOR).length,
  };
}

test("a transfer scavenges once per 4 MiB it moves", async () => {
  const seen = await collectionsDuring(() =>
    duringTransfer(async () => {
      for (let moved = 0; moved < 64 * MIB; moved += MIB / 2) collectTransferGarbage(MIB / 2);
    }),
  );
  // 16 of its own; V8 may add one of its own, and never runs 16 for this little allocation.
  assert.ok(seen.minor >= 16 && seen.minor <= 20, `expected 16 scavenges for 64 MiB moved, saw ${seen.minor}`);
});

test("moving less than 4 MiB collects nothing", async () => {
  const seen = await collectionsDuring(() => duringTransfer(async () => collectTransferGarbage(MIB)));
  assert.equal(seen.minor + seen.major, 0);
});

test("duringTransfer returns the transfer's value and passes its error on", async () => {
  assert.equal(await duringTransfer(async () => 42), 42);
  await assert.rejects(
    duringTransfer(async () => {
      throw new Error("link dropped");
    }),
    /link dropped/,
  );
  // Nested and concurrent transfers are fine (the flags are reset when the last one ends).
  const both = await Promise.all([duringTransfer(async () => duringTransfer(async () => 1)), duringTransfer(async () => 2)]);
  assert.deepEqual(both, [1, 2]);
});
