/**
 * The resumable runner channel (remote-agent/protocol/runner.ts) that lets a Docker session's
 * runtime outlive its agent, checked on the real runners (python, node) with FARLAB_CHANNEL_RESUME=1
 * and the test playing the agent: the channel is cut mid-cell without acknowledging anything,
 * the runner keeps running and connects again, says `ready` with `resume` (its job, the job's
 * first seq, its last seq), and after `resume` sends again exactly the messages after the one
 * named, so the two connections together hold every line once, in order, with seqs 1, 2, 3, ...
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { test } from "node:test";
import type { FromRunner } from "../remote-agent/protocol/runner";
import { runtimeCommand } from "../remote-agent/runtimes";

const LINES = 30;

/** One connection of the runner to the test's socket: its messages as they come. */
class Connection {
  readonly messages: FromRunner[] = [];
  private waiters: Array<() => void> = [];

  constructor(readonly socket: net.Socket) {
    readline.createInterface({ input: socket }).on("line", (line) => {
      if (!line.trim()) return;
      this.messages.push(JSON.parse(line) as FromRunner);
      this.waiters.splice(0).forEach((wake) => wake());
    });
  }

  async waitFor(predicate: (message: FromRunner) => boolean, what: string): Promise<FromRunner> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${what}; got ${JSON.stringify(this.messages).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1000);
      });
    }
  }

  send(message: object): void {
    this.socket.write(JSON.stringify(message) + "\n");
  }
}

/** Listens on `socketPath` for one connection. */
async function accept(socketPath: string): Promise<{ connection: Promise<Connection>; server: net.Server }> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer();
  const connection = new Promise<Connection>((resolve) => server.once("connection", (socket) => resolve(new Connection(socket))));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { connection, server };
}

const CELLS = {
  python: `import time\nfor i in range(${LINES}):\n    print(f"line {i}")\n    time.sleep(0.03)`,
  ts: `for (let i = 0; i < ${LINES}; i++) { console.log(\`line \${i}\`); await new Promise((r) => setTimeout(r, 30)); }`,
} as const;

for (const lang of ["python", "ts"] as const) {
  test(`${lang} runner: a channel cut mid-cell is resumed after the message the agent names, each message once`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-resume-"));
    const socketPath = path.join(dir, "channel.sock");
    const runtime = runtimeCommand(lang, { python: "/usr/bin/python3" });
    let { connection, server } = await accept(socketPath);
    const child = spawn(runtime.command, runtime.args, {
      cwd: dir,
      env: { ...process.env, ...runtime.env, FARLAB_CHANNEL: socketPath, FARLAB_CHANNEL_RESUME: "1", FARLAB_CHANNEL_RESUME_S: "30" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const first = await connection;
      const ready = await first.waitFor((m) => m.type === "ready", "ready");
      assert.equal(ready.seq, undefined, "ready is not numbered");
      first.send({ type: "execute", id: "job-1", code: CELLS[lang], inputs: {}, wantValue: false });
      await first.waitFor((m) => m.type === "stream" && m.text.includes("line 5\n"), "line 5");
      // The agent dies: the channel is cut with nothing acknowledged; a new agent listens.
      first.socket.destroy();
      server.close();
      ({ connection, server } = await accept(socketPath));
      const second = await connection;
      const again = await second.waitFor((m) => m.type === "ready", "ready after the reconnect");
      assert.equal(again.type === "ready" && again.resume?.job, "job-1");
      assert.equal(again.type === "ready" && again.resume?.jobFirstSeq, 1);
      // The "journal" has the first connection's messages up to line 3: resume after those.
      const journalled = first.messages.filter((m) => m.type !== "ready");
      const upTo = journalled.findIndex((m) => m.type === "stream" && m.text.includes("line 3\n"));
      const after = journalled[upTo].seq!;
      second.send({ type: "resume", after });
      await second.waitFor((m) => m.type === "done", "done");

      const all = [...journalled.slice(0, upTo + 1), ...second.messages.filter((m) => m.type !== "ready")];
      assert.deepEqual(all.map((m) => m.seq), all.map((_, i) => i + 1), "seqs 1, 2, 3, ... with none missing or repeated");
      const text = all.map((m) => (m.type === "stream" ? m.text : "")).join("");
      assert.equal(text, Array.from({ length: LINES }, (_, i) => `line ${i}\n`).join(""));
      assert.deepEqual(all.at(-1), { seq: all.length, type: "done", id: "job-1", status: "ok" });

      // After an ack of everything and another cut, a resume from the last seq sends nothing
      // again, and the runner goes on with the next cell, its numbering continued.
      second.send({ type: "ack", seq: all.length });
      second.socket.destroy();
      server.close();
      ({ connection, server } = await accept(socketPath));
      const third = await connection;
      const resumed = await third.waitFor((m) => m.type === "ready", "ready after the second reconnect");
      assert.equal(resumed.type === "ready" && resumed.resume?.lastSeq, all.length);
      third.send({ type: "resume", after: all.length });
      third.send({ type: "execute", id: "job-2", code: lang === "python" ? "print('still here')" : "console.log('still here')", inputs: {}, wantValue: false });
      await third.waitFor((m) => m.type === "done" && m.id === "job-2", "done of job-2");
      const later = third.messages.filter((m) => m.type !== "ready");
      assert.equal(later[0].seq, all.length + 1, "numbering goes on");
      assert.deepEqual(later.map((m) => m.seq), later.map((_, i) => all.length + 1 + i));
      assert.equal(later.map((m) => (m.type === "stream" ? m.text : "")).join(""), "still here\n");
    } catch (e) {
      throw new Error(`${(e as Error).message}\nrunner stderr:\n${stderr}`);
    } finally {
      child.kill("SIGKILL");
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
