/**
 * One %map worker: a replica of a session's runtime (started by the session's backend with the
 * session's resources) that replays the session's cells and then runs `map_batch`es.
 *
 * Worker output (the function's prints, and fd-level output of native code) goes to the map that
 * is using the worker, each line prefixed with `[worker N] `; output while no map uses it (cell
 * replay included) is dropped into the agent's log, so warming a worker never floods a cell.
 */
import { StringDecoder } from "node:string_decoder";
import { describeExit, type RuntimeExit, type RuntimeHandle } from "../backends/types";
import type { Log } from "../agent/log";
import type { FromRunner, ToRunner } from "../protocol/runner";
import type { RecordedCell } from "./replay-log";

export type MapResults = Extract<FromRunner, { type: "map_results" }>;
export type MapBatchMessage = Extract<ToRunner, { type: "map_batch" }>;

/** The worker's runtime exited while a batch (or a replayed cell) was on it. */
export class WorkerExited extends Error {
  constructor(
    readonly worker: number,
    readonly exit: RuntimeExit,
  ) {
    super(`worker ${worker} exited (${describeExit(exit)})`);
  }
}

type ReplayOutcome = { status: "ok" | "error" | "interrupted"; error?: { ename: string; evalue: string } };

export class MapWorker {
  /** How many cells of the session's replay log this worker has run. */
  replayed = 0;
  dead = false;
  readonly exited: Promise<RuntimeExit>;
  /** Where output goes while a map uses the worker. */
  output: ((name: "stdout" | "stderr", text: string) => void) | undefined;
  private readonly batches = new Map<number, { resolve(results: MapResults): void; reject(error: Error): void }>();
  private replay: { id: string; resolve(outcome: ReplayOutcome): void; reject(error: Error): void; error?: ReplayOutcome["error"] } | undefined;
  private exit: RuntimeExit | undefined;
  private readonly atLineStart = { stdout: true, stderr: true };

  constructor(
    /** 1, 2, 3... in the order the pool started them; shown in output prefixes and errors. */
    readonly number: number,
    readonly generation: number,
    private readonly runtime: RuntimeHandle,
    private readonly releaseResources: () => void,
    private readonly log: Log,
  ) {
    const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
    runtime.onOutput((name, chunk) => this.write(name, decoders[name].write(chunk)));
    void (async () => {
      for await (const message of runtime.messages) this.onMessage(message);
    })().catch((e) => log(`map worker ${number}: channel failed: ${(e as Error).message}`));
    this.exited = runtime.exited.then((exit) => {
      this.dead = true;
      this.exit = exit;
      this.releaseResources();
      const error = new WorkerExited(number, exit);
      for (const pending of this.batches.values()) pending.reject(error);
      this.batches.clear();
      this.replay?.reject(error);
      this.replay = undefined;
      return exit;
    });
  }

  get where(): string {
    return this.runtime.where;
  }

  /** Runs one of the session's cells (to rebuild its state); output is not shown. */
  replayCell(cell: RecordedCell, id: string): Promise<ReplayOutcome> {
    if (this.dead) return Promise.reject(new WorkerExited(this.number, this.exit!));
    return new Promise((resolve, reject) => {
      this.replay = { id, resolve, reject };
      this.runtime.send({ type: "execute", id, code: cell.code, inputs: cell.inputs, wantValue: false });
    });
  }

  /** Sends a batch; resolves with its results, rejects with WorkerExited if the runtime dies first. */
  runBatch(message: MapBatchMessage): Promise<MapResults> {
    if (this.dead) return Promise.reject(new WorkerExited(this.number, this.exit!));
    return new Promise((resolve, reject) => {
      this.batches.set(message.batch, { resolve, reject });
      this.runtime.send(message);
    });
  }

  get busy(): boolean {
    return this.batches.size > 0;
  }

  /** SIGINT: the running batch stops and reports what finished. */
  interrupt(): void {
    this.runtime.interrupt();
  }

  /** Asks the runtime to shut down; SIGKILL after `graceMs`. Resolves once it has exited. */
  async stop(graceMs: number): Promise<void> {
    if (!this.dead) {
      this.runtime.send({ type: "shutdown" });
      const timer = setTimeout(() => this.runtime.kill(), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
  }

  kill(): void {
    this.runtime.kill();
  }

  private onMessage(message: FromRunner): void {
    switch (message.type) {
      case "map_results": {
        this.runtime.drainOutput(); // the function's fd output lands before its results
        const pending = this.batches.get(message.batch);
        this.batches.delete(message.batch);
        pending?.resolve(message);
        return;
      }
      case "stream":
        this.write(message.name, message.text);
        return;
      case "error":
        if (this.replay && message.id === this.replay.id) this.replay.error = { ename: message.ename, evalue: message.evalue };
        return;
      case "done":
        if (this.replay && message.id === this.replay.id) {
          const { resolve, error } = this.replay;
          this.replay = undefined;
          resolve({ status: message.status, error });
        }
        return;
      default:
        return; // displays, progress and results of replayed cells are not shown
    }
  }

  private write(name: "stdout" | "stderr", text: string): void {
    if (text === "") return;
    if (!this.output) {
      this.log(`map worker ${this.number}: ${name}: ${text.slice(0, 300)}`);
      return;
    }
    const prefix = `[worker ${this.number}] `;
    const lines = text.split("\n");
    const last = lines.pop()!; // "" when the text ends a line
    let out = "";
    for (const line of lines) {
      out += (this.atLineStart[name] ? prefix : "") + line + "\n";
      this.atLineStart[name] = true;
    }
    if (last !== "") {
      out += (this.atLineStart[name] ? prefix : "") + last;
      this.atLineStart[name] = false;
    }
    this.output(name, out);
  }
}
