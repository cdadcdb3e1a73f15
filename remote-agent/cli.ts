#!/usr/bin/env node
/**
 * farlab-agent: the daemon that runs %%remote cells.
 *
 *   farlab-agent serve --stdio [--data-dir DIR]
 *
 * With --stdio, stdin/stdout carry the agent protocol (framed, see protocol/framing.ts) for one
 * client: the embedded local agent, or `ssh host farlab-agent serve --stdio`. stdout is the
 * protocol and nothing else; logs go to stderr and DATA/agent.log.
 */
import { Command, InvalidArgumentError } from "commander";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Agent } from "./agent/agent";
import { createLog, type Log } from "./agent/log";
import { ProcessBackend } from "./backends/process";
import { GpuAllocator } from "./gpu/allocator";
import { readGpuInventory } from "./gpu/inventory";
import { StreamTransport } from "./protocol/framing";

const DEFAULT_DATA_DIR = path.join(os.homedir(), ".local", "share", "farlab-agent");

interface ServeOptions {
  stdio?: boolean;
  listen?: string;
  dataDir: string;
  interruptGraceMs?: number;
  terminateGraceMs?: number;
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number of milliseconds");
  return n;
}

async function serve(options: ServeOptions): Promise<void> {
  if (options.listen) {
    process.stderr.write("farlab-agent: --listen (ZeroMQ with CURVE) is not available yet; use --stdio\n");
    process.exit(2);
  }
  if (!options.stdio) {
    process.stderr.write("farlab-agent serve: say how to serve: --stdio\n");
    process.exit(2);
  }
  const dataDir = path.resolve(options.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  const log = createLog(path.join(dataDir, "agent.log"));
  keepStdoutForTheProtocol(log);
  guardProcess(log);

  const readGpus = () => readGpuInventory();
  const gpus = new GpuAllocator(await readGpus());
  const agent = new Agent({
    dataDir,
    backend: new ProcessBackend({ dataDir, log }),
    gpus,
    log,
    readGpus,
    interruptGraceMs: options.interruptGraceMs,
    terminateGraceMs: options.terminateGraceMs,
  });
  log(`farlab-agent ${agent.version} serving stdio (pid ${process.pid}, data ${dataDir}, ${gpus.devices.length} GPUs)`);

  let exiting = false;
  const exit = async (why: string) => {
    if (exiting) return;
    exiting = true;
    log(`shutting down: ${why}`);
    await agent.shutdown();
    process.exit(0);
  };
  process.on("SIGTERM", () => void exit("SIGTERM"));
  process.on("SIGHUP", () => void exit("SIGHUP"));

  await agent.serve(new StreamTransport(process.stdin, process.stdout));
  // The one client is gone. Its jobs do not depend on it: let them finish (their journals stay
  // attachable), then stop the sessions' runtimes and exit.
  log("client disconnected; exiting once running jobs are done");
  await agent.whenIdle();
  await exit("stdin closed");
}

/** Anything that would print to stdout (console.log in a dependency) goes to the log instead. */
function keepStdoutForTheProtocol(log: Log): void {
  const toLog = (...args: unknown[]) => log(args.map(String).join(" "));
  console.log = toLog;
  console.info = toLog;
  console.debug = toLog;
}

/** The agent never dies of a bug in one request; the log keeps the evidence. */
function guardProcess(log: Log): void {
  process.on("uncaughtException", (e) => log(`uncaught exception: ${e?.stack ?? e}`));
  process.on("unhandledRejection", (e) => log(`unhandled rejection: ${(e as Error)?.stack ?? e}`));
  // The embedded agent shares its parent's process group; an interrupt meant for a cell must not
  // kill it (cells are interrupted through the protocol). At a terminal, Ctrl-C still stops it.
  if (!process.stdin.isTTY) process.on("SIGINT", () => log("ignoring SIGINT (interrupts arrive as requests)"));
}

const program = new Command()
  .name("farlab-agent")
  .description("farlab's agent: runs %%remote cells in sessions, with GPUs, and streams their output");

program
  .command("serve")
  .description("serve clients: --stdio serves one client over stdin/stdout")
  .option("--stdio", "serve one client over stdin/stdout (used by SSH and the embedded agent)")
  .option("--listen <url>", "serve many clients over ZeroMQ with CURVE (tcp://HOST:PORT); not available yet")
  .option("--data-dir <dir>", "keys, journal, sessions, volumes and secrets live here", DEFAULT_DATA_DIR)
  .option("--interrupt-grace-ms <ms>", "after SIGINT, how long a cell may take to stop before SIGTERM", milliseconds)
  .option("--terminate-grace-ms <ms>", "after SIGTERM, how long before SIGKILL", milliseconds)
  .action((options: ServeOptions) => serve(options));

program.parseAsync(process.argv).catch((e) => {
  process.stderr.write(`farlab-agent: ${(e as Error).message}\n`);
  process.exit(1);
});
