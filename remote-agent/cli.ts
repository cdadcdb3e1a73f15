#!/usr/bin/env node
/**
 * farlab-agent: the daemon that runs %%remote cells.
 *
 *   farlab-agent serve --stdio [--data-dir DIR]
 *   farlab-agent serve --listen tcp://HOST:PORT [--data-dir DIR]
 *   farlab-agent keys [--data-dir DIR]
 *   farlab-agent authorize KEY [--name NAME] [--data-dir DIR]
 *
 * With --stdio, stdin/stdout carry the agent protocol (framed, see protocol/framing.ts) for one
 * client: the embedded local agent, or `ssh host farlab-agent serve --stdio`. stdout is the
 * protocol and nothing else; logs go to stderr and DATA/agent.log. With --listen, many clients
 * connect over ZeroMQ with CURVE (see transports/zmq-listener.ts); `keys` prints the agent's
 * public key and `authorize` allows a client key (see keys/).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Agent, loadAgentId } from "./agent/agent";
import { createLog, type Log } from "./agent/log";
import { ProcessBackend } from "./backends/process";
import type { Backend } from "./backends/types";
import { GpuAllocator } from "./gpu/allocator";
import { readGpuInventory } from "./gpu/inventory";
import { tuneGcForIo } from "./gc-tuning";
import { StreamTransport } from "./protocol/framing";
// ZeroMQ (a native addon) is loaded only by the commands that use it (--listen, keys, authorize):
// `serve --stdio` must run from a bundle carried without node_modules (scripts/bundle-agent.js).
type ZmqListenerModule = typeof import("./transports/zmq-listener");
type AgentKeysModule = typeof import("./keys/agent-keys");
const loadZmqListener = (): ZmqListenerModule => require("./transports/zmq-listener") as ZmqListenerModule;
const loadAgentKeys = (): AgentKeysModule => require("./keys/agent-keys") as AgentKeysModule;
// dockerode too: only an agent that uses the Docker backend loads it.
type DockerModule = typeof import("./backends/docker");
const loadDocker = (): DockerModule => require("./backends/docker") as DockerModule;
import { DEFAULT_RETENTION, parseRetention, parseSize, startJournalRetention } from "./agent/journal-retention";

const DEFAULT_DATA_DIR = path.join(os.homedir(), ".local", "share", "farlab-agent");

interface ServeOptions {
  stdio?: boolean;
  listen?: string;
  dataDir: string;
  interruptGraceMs?: number;
  terminateGraceMs?: number;
  journalRetention: number;
  journalMaxSize: number;
  backend: string;
  dockerImage?: string;
  dockerSocket?: string;
}

function retention(value: string): number {
  try {
    return parseRetention(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function size(value: string): number {
  try {
    return parseSize(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number of milliseconds");
  return n;
}

async function serve(options: ServeOptions): Promise<void> {
  tuneGcForIo();
  if (Boolean(options.stdio) === Boolean(options.listen)) {
    process.stderr.write("farlab-agent serve: say how to serve: --stdio or --listen tcp://HOST:PORT (one of them)\n");
    process.exit(2);
  }
  const dataDir = path.resolve(options.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  const log = createLog(path.join(dataDir, "agent.log"));
  keepStdoutForTheProtocol(log);
  guardProcess(log);

  const readGpus = () => readGpuInventory();
  const gpus = new GpuAllocator(await readGpus());
  const backend = await chooseBackend(options, dataDir, log);
  const agent = new Agent({
    dataDir,
    backend,
    gpus,
    log,
    readGpus,
    interruptGraceMs: options.interruptGraceMs,
    terminateGraceMs: options.terminateGraceMs,
  });
  // Sessions an earlier agent on this data dir left running (killed: Docker containers outlive
  // it) are taken over, their running jobs going on, before any client can attach to them.
  const adopted = await agent.adoptLeftovers().catch((e: Error) => (log(`could not adopt earlier sessions: ${e.stack ?? e.message}`), 0));
  if (adopted > 0) log(`adopted ${adopted} session(s) left by an earlier agent on ${dataDir}`);
  // Finished jobs' journals are kept for a while (for %remote attach), then pruned.
  startJournalRetention(path.join(dataDir, "journal"), { maxAgeMs: options.journalRetention, maxBytes: options.journalMaxSize }, log);
  log(`farlab-agent ${agent.version} serving ${options.listen ? `ZeroMQ at ${options.listen}` : "stdio"} (pid ${process.pid}, data ${dataDir}, ${gpus.devices.length} GPUs, ${backend.name} backend)`);

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

  if (options.listen) {
    // Serves until SIGTERM/SIGHUP; the listening line on stderr names the real port (for port 0).
    const listener = await loadZmqListener().ZmqListener.start({ url: options.listen, dataDir, log, serve: (t) => agent.serve(t) });
    log(`listening on ${listener.endpoint} (ZeroMQ, CURVE public key ${listener.publicKey})`);
    return;
  }
  await agent.serve(new StreamTransport(process.stdin, process.stdout));
  // The one client is gone. Its jobs do not depend on it: let them finish (their journals stay
  // attachable), then stop the sessions' runtimes and exit.
  log("client disconnected; exiting once running jobs are done");
  await agent.whenIdle();
  await exit("stdin closed");
}

/**
 * --backend auto (the default, or $FARLAB_AGENT_BACKEND): Docker when its socket answers, else
 * the process backend.
 */
async function chooseBackend(options: ServeOptions, dataDir: string, log: Log): Promise<Backend> {
  const socketPath = options.dockerSocket ?? process.env.DOCKER_SOCKET ?? "/var/run/docker.sock";
  let choice = options.backend;
  if (!["auto", "docker", "process"].includes(choice)) {
    process.stderr.write(`farlab-agent serve: backend ${JSON.stringify(choice)} is not one of auto, docker, process\n`);
    process.exit(2);
  }
  if (choice === "auto") choice = (await dockerAnswersHere(socketPath, log)) ? "docker" : "process";
  if (choice === "process") return new ProcessBackend({ dataDir, log });
  const docker = loadDocker();
  // auto has just asked the engine; an explicit --backend docker has not.
  if (options.backend === "docker" && !(await docker.dockerAnswers(socketPath))) {
    process.stderr.write(`farlab-agent serve: --backend docker, but no Docker engine answers on ${socketPath}\n`);
    process.exit(2);
  }
  return new docker.DockerBackend({ dataDir, agentId: loadAgentId(dataDir), socketPath, defaultImage: options.dockerImage, log });
}

/**
 * Whether auto picks docker. dockerode is loaded only when the socket exists: the agent bundle
 * carried to machines without Docker has no node_modules (and dockerode needs ssh2 from there).
 */
async function dockerAnswersHere(socketPath: string, log: Log): Promise<boolean> {
  if (!fs.existsSync(socketPath)) return false;
  try {
    return await loadDocker().dockerAnswers(socketPath);
  } catch (e) {
    log(`Docker socket ${socketPath} exists, but the Docker backend cannot load: ${(e as Error).message}; using the process backend`);
    return false;
  }
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
  .description("serve clients: --stdio serves one client over stdin/stdout, --listen many over ZeroMQ")
  .option("--stdio", "serve one client over stdin/stdout (used by SSH and the embedded agent)")
  .option("--listen <url>", "serve many clients over ZeroMQ with CURVE (tcp://HOST:PORT)")
  .option("--data-dir <dir>", "keys, journal, sessions, volumes and secrets live here", DEFAULT_DATA_DIR)
  .option("--interrupt-grace-ms <ms>", "after SIGINT, how long a cell may take to stop before SIGTERM", milliseconds)
  .option("--terminate-grace-ms <ms>", "after SIGTERM, how long before SIGKILL", milliseconds)
  .addOption(
    new Option("--journal-retention <duration>", "keep finished jobs' output (for %remote attach) this long: 7d, 12h, 90m")
      .argParser(retention)
      .default(DEFAULT_RETENTION.maxAgeMs, "7d"),
  )
  .addOption(
    new Option("--journal-max-size <size>", "keep all journals under this size, oldest finished removed first: 1GiB, 500MiB")
      .argParser(size)
      .default(DEFAULT_RETENTION.maxBytes, "1GiB"),
  )
  .addOption(
    new Option("--backend <name>", "where sessions run: docker, process, or auto (docker when its socket answers)")
      .choices(["auto", "docker", "process"])
      .default(process.env.FARLAB_AGENT_BACKEND ?? "auto"),
  )
  .option("--docker-image <image>", "image of docker sessions that name none (image=)", process.env.FARLAB_DOCKER_IMAGE)
  .option("--docker-socket <path>", "the Docker engine's socket (default /var/run/docker.sock)")
  .action((options: ServeOptions) => serve(options));

program
  .command("keys")
  .description("print the agent's CURVE public key (clients pass it as server_key=); made on first use")
  .option("--data-dir <dir>", "keys, journal, sessions, volumes and secrets live here", DEFAULT_DATA_DIR)
  .action((options: { dataDir: string }) => {
    process.stdout.write(`${loadAgentKeys().agentPublicKey(path.resolve(options.dataDir))}\n`);
  });

program
  .command("authorize")
  .description("allow a client's CURVE public key (what `farlab keys` prints) to connect over ZeroMQ")
  .argument("<key>", "the client's public key, 40 characters of Z85")
  .option("--name <name>", "a name for the key, kept beside it in authorized_keys")
  .option("--data-dir <dir>", "keys, journal, sessions, volumes and secrets live here", DEFAULT_DATA_DIR)
  // Z85 keys may start with '-': such a key is the argument, not an unknown option.
  .allowUnknownOption()
  .action((key: string, options: { name?: string; dataDir: string }) => {
    process.stdout.write(`${loadAgentKeys().authorizeClient(path.resolve(options.dataDir), key, options.name)}\n`);
  });

program.parseAsync(process.argv).catch((e) => {
  process.stderr.write(`farlab-agent: ${(e as Error).message}\n`);
  process.exit(1);
});
