/**
 * Adaptive batch size for one %map worker. Each dispatch costs a round trip (agent -> runtime ->
 * agent), so tiny inputs must travel many to a batch; slow inputs must travel few, or one worker
 * ends up holding the tail while the others idle. The sizer starts at 1, measures the time per
 * input the runtime reports (elapsedMs of each batch), and aims at TARGET_BATCH_MS per batch,
 * growing at most 2x per batch so one fast outlier does not make a huge batch of slow inputs.
 */

/** Aimed-at run time of one batch: long against a round trip (~0.1-1 ms), short for balance. */
export const TARGET_BATCH_MS = 50;
export const MAX_BATCH = 4096;
/**
 * Below this time per input a worker gets a second batch queued behind the running one, which
 * hides the round trip; slower inputs go one batch at a time, so none waits behind another.
 */
const PIPELINE_BELOW_MS = 5;

export class BatchSizer {
  private perItemMs: number | undefined;
  private last = 0;

  constructor(private readonly fixed?: number) {}

  /** Size of the next batch; `fairShare` caps it near the end (inputs left / workers). */
  next(fairShare: number): number {
    if (this.fixed !== undefined) return this.fixed;
    // Unmeasured inputs go one at a time: they may be slow.
    let size = this.perItemMs === undefined ? 1 : this.last * 2;
    if (this.perItemMs !== undefined && this.perItemMs > 0) size = Math.min(size, Math.floor(TARGET_BATCH_MS / this.perItemMs));
    size = Math.max(1, Math.min(size, MAX_BATCH, Math.max(1, fairShare)));
    this.last = size;
    return size;
  }

  observe(items: number, elapsedMs: number): void {
    if (items <= 0) return;
    const perItem = Math.max(elapsedMs, 0) / items;
    this.perItemMs = this.perItemMs === undefined ? perItem : 0.5 * this.perItemMs + 0.5 * perItem;
  }

  /** Whether to keep a second batch queued on the worker (hides the round trip for quick batches). */
  get pipelined(): boolean {
    return this.perItemMs !== undefined && this.perItemMs < PIPELINE_BELOW_MS;
  }
}
