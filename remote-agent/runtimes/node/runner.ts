/**
 * farlab's Node runtime (bundled to dist/runtimes/node-runner.js, no node_modules needed):
 * `node node-runner.js --lang ts` runs TypeScript/JavaScript cells, `--lang sh` runs bash cells.
 * It connects to the agent's Unix socket ($FARLAB_CHANNEL) and speaks the runner protocol
 * (remote-agent/protocol/runner.ts); cells run one at a time, in arrival order.
 */
import type { ToRunner } from "../../protocol/runner";
import { RunnerChannel } from "./channel";

type Execute = Extract<ToRunner, { type: "execute" }>;
type MapBatch = Extract<ToRunner, { type: "map_batch" }>;
type Lang = "ts" | "sh";

function parseLang(argv: string[]): Lang {
  const index = argv.indexOf("--lang");
  const lang = index >= 0 ? argv[index + 1] : "ts";
  if (lang === "ts" || lang === "sh") return lang;
  process.stderr.write(`farlab node runner: --lang must be ts or sh, not ${JSON.stringify(lang)}\n`);
  process.exit(2);
}

/** Answers a %map batch that cannot run at all (none of its items ran). */
function failBatch(channel: RunnerChannel, message: MapBatch, ename: string, evalue: string): void {
  channel.send({ type: "map_results", batch: message.batch, indices: [], values: [], errors: [], elapsedMs: 0, fnError: { ename, evalue } });
}

/**
 * fd 1/2 blocking, as in any program writing to a pipe: Node makes them non-blocking when it
 * first touches process.stdout/stderr, and the runner's own output goes over the channel anyway,
 * while fd 1/2 are shared with cell code (fs.writeSync(1)) and child processes (stdio inherit),
 * which would get EAGAIN instead of waiting whenever the agent reads slower than they write (a
 * full pipe: back-pressure, or no agent between a kill and the next one's adoption).
 */
function blockingStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    (stream as unknown as { _handle?: { setBlocking?: (blocking: boolean) => unknown } })._handle?.setBlocking?.(true);
  }
}

async function main(): Promise<void> {
  blockingStdio();
  const lang = parseLang(process.argv.slice(2));
  const channelPath = process.env.FARLAB_CHANNEL;
  if (!channelPath) {
    process.stderr.write("farlab node runner: FARLAB_CHANNEL (the agent's Unix socket path) is not set\n");
    process.exit(2);
  }
  const channel = await RunnerChannel.connect(channelPath);
  let execute: (message: Execute) => Promise<"ok" | "error" | "interrupted">;
  let mapBatch: (message: MapBatch) => Promise<void>;
  if (lang === "ts") {
    // Loaded only here: the sh runner starts without evaluating the TypeScript compiler.
    const [{ installStreams }, { TsSession }] = await Promise.all([import("./streams"), import("./ts-session")]);
    installStreams(channel);
    const session = new TsSession(channel);
    execute = (message) => session.execute(message);
    mapBatch = (message) => session.mapBatch(message);
  } else {
    const { ShellSession } = await import("./shell");
    const session = new ShellSession(channel);
    execute = (message) => session.execute(message);
    mapBatch = async (message) =>
      failBatch(channel, message, "ShellError", "%map needs a function of a lang=python or lang=ts session; bash cells define none");
  }

  let queue = Promise.resolve();
  channel.listen(
    (message) => {
      if (message.type === "execute") {
        queue = queue.then(async () => {
          channel.setJob(message.id);
          const status = await execute(message).catch((error: unknown) => {
            channel.send({ type: "error", ename: "RunnerError", evalue: String(error), traceback: [String((error as Error)?.stack ?? error)] });
            return "error" as const;
          });
          channel.send({ type: "done", status });
        });
      } else if (message.type === "map_batch") {
        queue = queue.then(async () => {
          channel.setJob(message.id);
          await mapBatch(message).catch((error: unknown) => failBatch(channel, message, "RunnerError", String((error as Error)?.stack ?? error)));
        });
      } else if (message.type === "shutdown") {
        queue = queue.then(() => channel.close(() => process.exit(0)));
      }
    },
    () => process.exit(0),
  );
  channel.send({ type: "ready", pid: process.pid, lang });
}

void main();
