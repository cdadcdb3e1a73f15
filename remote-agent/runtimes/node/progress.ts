/**
 * progress(...) in the TypeScript runtime: bars sent as `progress` runner messages (the kernel
 * draws them with kernel/display's ProgressDisplay), throttled as the kernel's own bars are (at
 * most about 10 a second, the latest state sent when the interval ends, the final state always).
 * Accepts what display.progress accepts (options or a total) and also an iterable:
 * `for (const x of progress(items))` / `for await (...)`.
 */
import { randomUUID } from "node:crypto";
import type { ProgressBar, ProgressOptions } from "../../../kernel/display/api-types";
import { sizeOf, tickEach } from "../../../kernel/display/progress";
import { Throttle } from "../../../kernel/display/throttle";
import type { RunnerChannel } from "./channel";

export class RunnerProgressBar implements ProgressBar {
  readonly displayId = `farlab-bar-${randomUUID()}`;
  private n = 0;
  private total: number | null;
  private closed = false;
  private readonly description?: string;
  private readonly throttle: Throttle;

  constructor(
    private readonly channel: RunnerChannel,
    options: ProgressOptions,
    private readonly openBars: Set<RunnerProgressBar>,
  ) {
    this.total = options.total ?? null;
    this.description = options.description;
    this.throttle = new Throttle(() => this.send(), { minIntervalMs: options.minIntervalMs });
    openBars.add(this);
    this.send();
  }

  private send(): void {
    this.channel.send({
      type: "progress",
      barId: this.displayId,
      n: this.n,
      total: this.total,
      closed: this.closed,
      ...(this.description !== undefined ? { description: this.description } : {}),
    });
  }

  tick(n = 1): void {
    this.n += n;
    this.throttle.request();
  }

  set(count: number, total?: number): void {
    this.n = count;
    if (total !== undefined) this.total = total;
    this.throttle.request();
  }

  done(): void {
    if (this.closed) return;
    this.closed = true;
    this.openBars.delete(this);
    this.throttle.finish();
  }

  /** Sync iteration, ticking once per item; done() when the loop ends (also on break/throw). */
  *iterate<T>(items: Iterable<T>): Generator<T> {
    try {
      for (const item of items) {
        yield item;
        this.tick();
      }
    } finally {
      this.done();
    }
  }

  wrap<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
    return tickEach(this, items);
  }
}

function isIterable(value: unknown): value is Iterable<unknown> | AsyncIterable<unknown> {
  return (
    value !== null &&
    typeof value === "object" &&
    (typeof (value as Iterable<unknown>)[Symbol.iterator] === "function" || typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function")
  );
}

export interface ProgressFunction {
  (options?: ProgressOptions | number): ProgressBar;
  <T>(items: Iterable<T> | AsyncIterable<T>, options?: ProgressOptions): Iterable<T> & AsyncIterable<T>;
}

export function createProgress(channel: RunnerChannel): { progress: ProgressFunction; closeOpenBars(): void } {
  const openBars = new Set<RunnerProgressBar>();
  const progress = ((first?: unknown, second?: ProgressOptions) => {
    if (isIterable(first)) {
      const options = { total: sizeOf(first), ...second };
      const bar = new RunnerProgressBar(channel, options, openBars);
      return {
        [Symbol.iterator]: () => bar.iterate(first as Iterable<unknown>),
        [Symbol.asyncIterator]: () => bar.wrap(first),
      };
    }
    const options = typeof first === "number" ? { total: first } : ((first as ProgressOptions | undefined) ?? {});
    return new RunnerProgressBar(channel, options, openBars);
  }) as ProgressFunction;
  return {
    progress,
    closeOpenBars() {
      for (const bar of [...openBars]) bar.done();
    },
  };
}
