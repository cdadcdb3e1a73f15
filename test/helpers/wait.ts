/**
 * Waiting on a real condition (a port answering, a file appearing), bounded. A poll with a
 * deadline, never a fixed sleep: the wait ends as soon as the condition holds.
 */
import { setTimeout as delay } from "node:timers/promises";

export interface WaitOptions {
  /** What is awaited, for the timeout message. */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/** Resolves with the first truthy value `probe` returns; a probe that throws counts as "not yet". */
export async function waitFor<T>(probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const interval = options.intervalMs ?? 100;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${options.what}${cause}`);
    }
    await delay(interval);
  }
}
