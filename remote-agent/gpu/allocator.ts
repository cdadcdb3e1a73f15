/**
 * Exclusive GPU allocation per session, with a first-come-first-served wait queue.
 *
 * A request takes the first alternative of its spec (fallback order) that has enough free GPUs.
 * A request that must wait reserves the GPUs it could use, so a later request cannot take them
 * from under it (no starvation of `any:2` by a stream of `any`); a later request whose GPUs do
 * not overlap with the waiting ones is served at once. While it waits, the request hears a line
 * saying why ("waiting for A100: held by session 'two'", "waiting for A100: 1 job ahead"),
 * again whenever the reason changes.
 */
import type { GpuDevice } from "./inventory";
import { describeInventory, everSatisfiable, matchingGpus, type GpuSpec } from "./spec";

interface Waiter {
  session: string;
  spec: GpuSpec;
  onWait: (text: string) => void;
  lastText?: string;
  resolve: (gpus: GpuDevice[]) => void;
  reject: (error: Error) => void;
}

export class GpuWaitAborted extends Error {
  override name = "GpuWaitAborted";
}

export class GpuAllocator {
  /** uuid -> session holding it */
  private readonly held = new Map<string, string>();
  private readonly waiters: Waiter[] = [];

  constructor(private inventory: GpuDevice[]) {}

  get devices(): readonly GpuDevice[] {
    return this.inventory;
  }

  /** Replaces the inventory (fresh memory figures); allocations are kept by uuid. */
  updateInventory(gpus: GpuDevice[]): void {
    this.inventory = gpus;
    this.pump();
  }

  heldBy(uuid: string): string | null {
    return this.held.get(uuid) ?? null;
  }

  /** Null when the spec can be satisfied some day; otherwise why not, listing what there is. */
  neverSatisfiableReason(spec: GpuSpec): string | null {
    if (everSatisfiable(spec, this.inventory)) return null;
    return `no GPU on this agent can satisfy gpu=${spec.text}; it has ${describeInventory(this.inventory)}`;
  }

  /**
   * Allocates GPUs for `session`, waiting in the queue when they are held. Rejects with
   * GpuWaitAborted when `signal` aborts first.
   */
  acquire(session: string, spec: GpuSpec, onWait: (text: string) => void, signal?: AbortSignal): Promise<GpuDevice[]> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new GpuWaitAborted("cancelled while waiting for a GPU"));
      const waiter: Waiter = { session, spec, onWait, resolve, reject };
      this.waiters.push(waiter);
      signal?.addEventListener(
        "abort",
        () => {
          const i = this.waiters.indexOf(waiter);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          reject(new GpuWaitAborted("cancelled while waiting for a GPU"));
          this.pump();
        },
        { once: true },
      );
      this.pump();
    });
  }

  /**
   * Marks GPUs as held by `session` without waiting: a runtime an agent adopts from its dead
   * predecessor (Docker backend) keeps the devices its container has. Unknown UUIDs are skipped.
   */
  claim(session: string, uuids: string[]): GpuDevice[] {
    const devices = this.inventory.filter((gpu) => uuids.includes(gpu.uuid));
    for (const gpu of devices) this.held.set(gpu.uuid, session);
    return devices;
  }

  release(session: string): void {
    let changed = false;
    for (const [uuid, holder] of this.held) {
      if (holder === session) {
        this.held.delete(uuid);
        changed = true;
      }
    }
    if (changed) this.pump();
  }

  /** Serves waiters in order; tells the ones still waiting why. */
  private pump(): void {
    const reserved = new Set<string>();
    const blockedAhead: Set<string>[] = [];
    for (const waiter of [...this.waiters]) {
      const granted = this.tryGrant(waiter, reserved);
      if (granted) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        for (const gpu of granted) this.held.set(gpu.uuid, waiter.session);
        waiter.resolve(granted);
        continue;
      }
      const candidates = new Set(waiter.spec.alternatives.flatMap((alt) => matchingGpus(alt, this.inventory).map((g) => g.uuid)));
      const ahead = blockedAhead.filter((other) => [...other].some((uuid) => candidates.has(uuid))).length;
      const text = this.waitText(waiter.spec, candidates, ahead);
      if (text !== waiter.lastText) {
        waiter.lastText = text;
        waiter.onWait(text);
      }
      for (const uuid of candidates) reserved.add(uuid);
      blockedAhead.push(candidates);
    }
  }

  private tryGrant(waiter: Waiter, reserved: Set<string>): GpuDevice[] | null {
    for (const alt of waiter.spec.alternatives) {
      const free = matchingGpus(alt, this.inventory).filter((g) => !this.held.has(g.uuid) && !reserved.has(g.uuid));
      if (free.length >= alt.count) return free.slice(0, alt.count);
    }
    return null;
  }

  private waitText(spec: GpuSpec, candidates: Set<string>, ahead: number): string {
    const holders = [...new Set([...candidates].map((uuid) => this.held.get(uuid)).filter((s): s is string => !!s))];
    const reasons: string[] = [];
    if (ahead > 0) reasons.push(`${ahead} job${ahead === 1 ? "" : "s"} ahead`);
    if (holders.length > 0) {
      reasons.push(`held by ${holders.length === 1 ? "session" : "sessions"} ${holders.map((s) => `'${s}'`).join(", ")}`);
    }
    return `waiting for ${spec.text}: ${reasons.join("; ") || "not enough free GPUs"}`;
  }
}
