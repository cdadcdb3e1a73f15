/**
 * At most one publication per interval, the latest state never lost: a request inside the
 * interval schedules one publication for when it ends (so something that stops changing does not
 * stay stale), and the final publication always happens, once. Progress bars use it, in the kernel
 * (ProgressDisplay) and in the remote TypeScript runtime (runner `progress` messages) alike.
 */

export interface ThrottleOptions {
  /** Least milliseconds between two publications; default 100 (about ten a second). */
  minIntervalMs?: number;
  /** Milliseconds since some fixed origin; default Date.now. Injected by tests. */
  now?: () => number;
  /** Schedules a deferred publication; returns its cancel. Default setTimeout (unref'd). Injected by tests. */
  schedule?: (callback: () => void, delayMs: number) => () => void;
}

function defaultSchedule(callback: () => void, delayMs: number): () => void {
  const timer = setTimeout(callback, delayMs);
  timer.unref?.();
  return () => clearTimeout(timer);
}

export class Throttle {
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly schedule: (callback: () => void, delayMs: number) => () => void;
  private lastPublishedAt: number;
  private cancelPending: (() => void) | undefined;
  private finished = false;

  /** `publish` sends the current state; the interval counts from now (the caller's first publication). */
  constructor(private readonly publish: () => void, options: ThrottleOptions = {}) {
    this.minIntervalMs = options.minIntervalMs ?? 100;
    this.now = options.now ?? Date.now;
    this.schedule = options.schedule ?? defaultSchedule;
    this.lastPublishedAt = this.now();
  }

  /** The state changed: publish now if the interval is over, else once when it is. No-op after finish(). */
  request(): void {
    if (this.finished) return;
    const waited = this.now() - this.lastPublishedAt;
    if (waited >= this.minIntervalMs) {
      this.publishNow();
    } else if (!this.cancelPending) {
      this.cancelPending = this.schedule(() => {
        this.cancelPending = undefined;
        if (!this.finished) this.publishNow();
      }, this.minIntervalMs - waited);
    }
  }

  /** The final publication, whatever the interval; later calls and requests do nothing. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.publishNow();
  }

  private publishNow(): void {
    this.cancelPending?.();
    this.cancelPending = undefined;
    this.lastPublishedAt = this.now();
    this.publish();
  }
}
