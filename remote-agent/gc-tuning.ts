/**
 * Garbage collection around volume transfers, on both sides: the agent (tuned for its whole life
 * by tuneGcForIo, from cli.ts) and the kernel side, where transfers run in the executor next to the
 * user's code and the TypeScript compiler (tuned only while a transfer runs, by duringTransfer).
 *
 * Why: a transfer moves its bytes through buffers outside V8's heap (SSH packets, socket reads,
 * chunks), which V8 frees only when a collection finds their small JS objects dead. Left to
 * itself V8 runs a full collection after every 64 MB or so of them, overshooting while it marks,
 * and three things went wrong (perf and --trace-gc, docs/volumes.md):
 *
 * - Memory: dead buffers piled up to 64-90 MiB of extra RSS. Most die young, so a young-generation
 *   collection (a scavenge, well under a millisecond) frees them; V8 just never runs one, because
 *   their JS objects hardly fill the young generation. So transfers run one every
 *   TRANSFER_GC_BYTES they move (collectTransferGarbage).
 * - CPU on the agent: concurrent marking wakes V8's helper threads for every full collection, and
 *   on a small heap they spend far more CPU coordinating than marking, CPU that sshd and the
 *   transfer needed on a small machine. The agent marks on its main thread (--no-concurrent-marking).
 * - CPU in the executor: its heap is 75-90 MB (the compiler, the notebook's state), and V8 counts
 *   the transfer's buffers against its global limit, which it sets only a little above the heap
 *   after each full collection: a download could run 10-15 full collections back to back, each
 *   freeing 0.3 MB. While a transfer runs the heap may grow by half before one
 *   (--heap-growing-percent=50); the flag goes back to V8's own choice when the last one ends.
 *
 * Flags are set at run time (v8.setFlagsFromString): V8 reads them when a collection starts or its
 * limits are computed, and `gc` exists in contexts made after --expose-gc is set. That also gives
 * every way of starting the agent the same tuning (`ssh host farlab-agent` through its #! line,
 * `node dist/remote-agent/cli.js`).
 */
import * as v8 from "node:v8";
import * as vm from "node:vm";

const TRANSFER_GC_BYTES = 4 * 1024 * 1024;

type Collector = (options: { type: "minor" }) => void;
let gc: Collector | undefined;
let movedSinceCollect = 0;
let transfersRunning = 0;

function enableCollections(): void {
  if (gc) return;
  v8.setFlagsFromString("--expose-gc");
  gc = vm.runInNewContext("gc") as Collector;
}

/** For the agent, for its whole life. */
export function tuneGcForIo(): void {
  v8.setFlagsFromString("--no-concurrent-marking");
  enableCollections();
}

/** Runs one kernel-side transfer with the collections and the heap growth transfers need. */
export async function duringTransfer<T>(transfer: () => Promise<T>): Promise<T> {
  enableCollections();
  if (transfersRunning++ === 0) v8.setFlagsFromString("--heap-growing-percent=50");
  try {
    return await transfer();
  } finally {
    if (--transfersRunning === 0) v8.setFlagsFromString("--heap-growing-percent=0");
  }
}

/** Called by transfers with the bytes they just moved; a scavenge every TRANSFER_GC_BYTES. */
export function collectTransferGarbage(bytes: number): void {
  if (!gc) return;
  movedSinceCollect += bytes;
  if (movedSinceCollect < TRANSFER_GC_BYTES) return;
  movedSinceCollect = 0;
  gc({ type: "minor" });
}
