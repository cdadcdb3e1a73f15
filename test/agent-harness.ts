/**
 * Drives a real `farlab-agent serve --stdio` child for the agent tests: sends frames (or raw
 * bytes), collects everything the agent sends, and waits for messages by predicate (never by
 * sleeping).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FrameDecoder, encodeFrame } from "../remote-agent/protocol/framing";
import { FromAgent, type ErrorReply, type JobEvent, type JobEventBody, type Reply } from "../remote-agent/protocol/messages";

export const AGENT_CLI = path.join(__dirname, "..", "remote-agent", "cli.js");

/** Agents still running when the test process exits (a failed test) are told to stop. */
const running = new Set<ChildProcessWithoutNullStreams>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGTERM");
});

/** Data dirs made here, removed when the test process exits. */
const madeDirs: string[] = [];
process.on("exit", () => {
  for (const dir of madeDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

type Waiter = { predicate: (m: FromAgent) => boolean; resolve: (m: FromAgent) => void };

export interface AgentOptions {
  env?: NodeJS.ProcessEnv;
  args?: string[];
  dataDir?: string;
}

export class AgentHarness {
  readonly received: FromAgent[] = [];
  readonly stderr: string[] = [];
  private readonly waiters: Waiter[] = [];
  private nextId = 1;
  readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly dataDir: string,
  ) {
    const decoder = new FrameDecoder();
    child.stdout.on("data", (chunk: Buffer) => {
      for (const item of decoder.push(chunk)) {
        if (item.kind !== "frame") throw new Error(`agent sent a malformed frame: ${item.message}`);
        // Everything the agent sends must satisfy the protocol's schema.
        const message = FromAgent.parse(item.header);
        this.received.push(message);
        for (const waiter of [...this.waiters]) {
          if (waiter.predicate(message)) {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            waiter.resolve(message);
          }
        }
      }
    });
    child.stderr.on("data", (chunk: Buffer) => this.stderr.push(chunk.toString()));
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    running.add(child);
    child.on("exit", () => running.delete(child));
  }

  static start(options: AgentOptions = {}): AgentHarness {
    const dataDir = options.dataDir ?? tempDir("farlab-agent-test-");
    const child = spawn(
      process.execPath,
      [AGENT_CLI, "serve", "--stdio", "--data-dir", dataDir, "--interrupt-grace-ms", "1000", "--terminate-grace-ms", "1000", ...(options.args ?? [])],
      // The process backend unless a test asks for another (with dockerd up, auto = docker).
      { env: { FARLAB_AGENT_BACKEND: "process", ...(options.env ?? process.env) }, stdio: ["pipe", "pipe", "pipe"] },
    );
    return new AgentHarness(child, dataDir);
  }

  writeRaw(bytes: Buffer): void {
    this.child.stdin.write(bytes);
  }

  send(header: object, payload?: Buffer): void {
    this.writeRaw(encodeFrame(header, payload));
  }

  /** The first message (already received or still to come) that satisfies `predicate`. */
  waitFor(predicate: (m: FromAgent) => boolean): Promise<FromAgent> {
    const seen = this.received.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ predicate, resolve }));
  }

  /** Sends a request (v and id filled in) and resolves with its reply or error. */
  async request(fields: Record<string, unknown>): Promise<Reply | ErrorReply> {
    const id = `r${this.nextId++}`;
    this.send({ v: 1, id, ...fields });
    return (await this.waitFor((m) => m.type !== "event" && m.re === id)) as Reply | ErrorReply;
  }

  /** Like request, but fails unless the answer is a reply; returns its body. */
  async ok<T = Reply["body"]>(fields: Record<string, unknown>): Promise<T> {
    const answer = await this.request(fields);
    if (answer.type !== "reply") throw new Error(`expected a reply to ${JSON.stringify(fields)}, got ${JSON.stringify(answer)}`);
    return answer.body as T;
  }

  /** Starts a job and returns its id. */
  async run(code: string, session: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<string> {
    const body = await this.ok<{ jobId: string }>({
      type: "run",
      code,
      session: { lang: "sh", resources: {}, ...session },
      ...extra,
    });
    return body.jobId;
  }

  events(jobId: string): JobEvent[] {
    return this.received.filter((m): m is JobEvent => m.type === "event" && m.jobId === jobId);
  }

  waitForEvent(jobId: string, predicate: (e: JobEventBody) => boolean): Promise<JobEvent> {
    return this.waitFor((m) => m.type === "event" && m.jobId === jobId && predicate(m.event)) as Promise<JobEvent>;
  }

  /** Waits for the job's `done` and returns all its events received so far. */
  async done(jobId: string): Promise<{ status: string; events: JobEvent[] }> {
    const done = await this.waitForEvent(jobId, (e) => e.kind === "done");
    return { status: (done.event as { status: string }).status, events: this.events(jobId) };
  }

  stdoutOf(jobId: string): string {
    return this.events(jobId)
      .map((e) => (e.event.kind === "stream" && e.event.name === "stdout" ? e.event.text : ""))
      .join("");
  }

  /** Closes stdin (the agent finishes its jobs and exits) and waits for the exit. */
  async close(): Promise<number | null> {
    this.child.stdin.end();
    return this.exited;
  }
}

/** Runs `body` with a fresh agent (started with `options`) and closes the agent after it, whether
 * `body` passes or throws. */
export function withAgent<T>(body: (agent: AgentHarness) => Promise<T>): Promise<T>;
export function withAgent<T>(options: AgentOptions, body: (agent: AgentHarness) => Promise<T>): Promise<T>;
export async function withAgent<T>(
  first: AgentOptions | ((agent: AgentHarness) => Promise<T>),
  second?: (agent: AgentHarness) => Promise<T>,
): Promise<T> {
  const [options, body] = typeof first === "function" ? [{}, first] : [first, second!];
  const agent = AgentHarness.start(options);
  try {
    return await body(agent);
  } finally {
    await agent.close();
  }
}

/** Writes an executable script into a fresh folder and returns the folder (to prepend to PATH). */
export { tempDir };

export function scriptDir(name: string, body: string): string {
  const dir = tempDir("farlab-bin-");
  fs.writeFileSync(path.join(dir, name), body, { mode: 0o755 });
  return dir;
}
