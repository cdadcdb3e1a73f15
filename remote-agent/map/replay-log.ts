/**
 * What a session's %map workers replay to become replicas of it: the code (and -i inputs) of the
 * session's cells that finished ok, in order, since its runtime started. The session records
 * cells, resets the log when its runtime's state is lost (restart, exit), and says when it stops;
 * worker pools read the log and listen for the stop.
 */
export interface RecordedCell {
  code: string;
  inputs: Record<string, unknown>;
}

export class ReplayLog {
  private recorded: RecordedCell[] = [];
  /** Bumped whenever the session's state is lost: replicas built on an older one are stale. */
  generation = 0;
  private readonly stopListeners = new Set<() => void | Promise<void>>();

  get cells(): readonly RecordedCell[] {
    return this.recorded;
  }

  record(cell: RecordedCell): void {
    this.recorded.push(cell);
  }

  /** The runtime's state is gone (restart, exit, kill). */
  reset(): void {
    if (this.recorded.length === 0) return; // nothing was replayed from it: replicas are still alike
    this.recorded = [];
    this.generation++;
  }

  onStop(listener: () => void | Promise<void>): () => void {
    this.stopListeners.add(listener);
    return () => this.stopListeners.delete(listener);
  }

  /** The session has stopped: its replicas go too (resolves once they have). */
  async stopped(): Promise<void> {
    const listeners = [...this.stopListeners];
    this.stopListeners.clear();
    await Promise.allSettled(listeners.map((listener) => listener()));
  }
}
