/**
 * The Docker backend (through dockerode): each session is a long-lived container of the image the
 * user names (`image=`, else the agent's default image),
 * - running any image: the agent's own node binary and runtimes folder are bind-mounted read-only
 *   (/farlab/bin/node, /farlab/runtimes), so TypeScript cells need no node in the image and
 *   Python cells only a python3;
 * - talking the runner protocol over a Unix socket in a folder of the agent's that is
 *   bind-mounted at /farlab/channel (same kernel: a bind-mounted socket connects across);
 * - with `Init: true`: docker-init (tini) is PID 1 and forwards signals to the runtime, so
 *   `docker kill --signal SIGINT` interrupts a cell (KeyboardInterrupt / Interrupted, state kept)
 *   and SIGTERM/SIGKILL end it, as with the process backend;
 * - limited: cpu= as NanoCpus, memory= as Memory with MemorySwap equal (no swap), a pids limit,
 *   a shm size; a container the kernel killed for memory ends the cell with OutOfMemoryError;
 * - with its allocated GPUs as a DeviceRequest (driver nvidia, the devices' UUIDs, [["gpu"]]);
 * - labelled with the agent's data dir and id, the session, its owner, the spec id and the
 *   session's settings; its runtime outlives the agent (a resumable channel, FIFOs held open in
 *   the container), and the next agent on the same data dir adopts it (adoptLeftovers), running
 *   job included, or removes it when it cannot;
 * - with apt=/pip=: in an image derived by a generated Dockerfile, cached by content (sessionImage).
 * The runtime's fd 1/2 are FIFOs in the channel folder (`sh -c 'exec ... 3<>fifo >fifo'`: the image
 * needs a /bin/sh), polled (./fifo-poller.ts) and journalled as read, with the same synchronous
 * drain as the process backend's pipes. The
 * container is removed once it has exited (after its exit state has been read). docs/agent.md.
 */
import Docker from "dockerode";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { heldByAnotherLiveProcess } from "../agent/pid-file";
import { FifoPoller } from "./fifo-poller";
import { runnerMessages, runtimeHandle } from "./process";
import { RUNTIMES_DIR, runtimeCommand } from "../runtimes";
import type { Lang, Resources } from "../protocol/messages";
import type { FromRunner } from "../protocol/runner";
import {
  RuntimeStartError,
  describeExit,
  type Backend,
  type LeftoverRuntime,
  type RuntimeExit,
  type RuntimeHandle,
  type SessionSpec,
} from "./types";

/** Images built for apt=/pip=, tagged by content. */
export const DERIVED_REPOSITORY = "farlab-derived";
const LABEL_DERIVED = "farlab.derived";
const BUILD_LOG_TAIL = 20;
/** Package names and pip requirement specs: no spaces, quotes or shell syntax. */
const PACKAGE = /^[A-Za-z0-9][A-Za-z0-9._+:=<>~!@\/\[\],-]*$/;

export class ImageBuildError extends RuntimeStartError {
  override name = "ImageBuildError";
}

/**
 * The Dockerfile of a derived image. Names are checked (PACKAGE) and single-quoted, so nothing
 * in them reaches the shell as syntax. pip falls back to --break-system-packages for images whose
 * python is "externally managed" (Debian 12).
 */
export function derivedDockerfile(base: string, apt: string[], pip: string[]): string {
  for (const name of [...apt, ...pip]) {
    if (!PACKAGE.test(name)) throw new ImageBuildError(`${JSON.stringify(name)} is not a package name or requirement (letters, digits and . _ + - : = < > ~ ! [ ] only)`);
  }
  const quoted = (names: string[]) => names.map((n) => `'${n}'`).join(" ");
  const lines = [`FROM ${base}`];
  if (apt.length > 0) {
    lines.push(
      `RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${quoted(apt)} && rm -rf /var/lib/apt/lists/*`,
    );
  }
  if (pip.length > 0) {
    lines.push(
      `RUN python3 -m pip install --no-cache-dir ${quoted(pip)} || python3 -m pip install --no-cache-dir --break-system-packages ${quoted(pip)}`,
    );
  }
  return lines.join("\n") + "\n";
}

export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";
/** The image of sessions that name none (`--docker-image`); it needs python3 for Python cells. */
export const DEFAULT_IMAGE = "python:3.12-slim";
/** Where the agent's pieces appear inside every container. */
const CONTAINER_NODE = "/farlab/bin/node";
const CONTAINER_RUNTIMES = "/farlab/runtimes";
const CONTAINER_CHANNEL_DIR = "/farlab/channel";
const CONTAINER_WORK_DIR = "/farlab/work";
const CHANNEL_NAME = "channel.sock";
const STDOUT_FIFO = "stdout";
const STDERR_FIFO = "stderr";
const MAX_SOCKET_PATH = 100;
const PIDS_LIMIT = 4096;
const SHM_SIZE_BYTES = 1024 * 1024 * 1024;
const OUTPUT_TAIL_BYTES = 4000;

/** Labels; `farlab.data-dir` identifies the agent (one agent per data dir). */
export const LABEL_DATA_DIR = "farlab.data-dir";
export const LABEL_SESSION = "farlab.session";
export const LABEL_SPEC_ID = "farlab.session-id";
export const LABEL_AGENT_ID = "farlab.agent-id";
export const LABEL_OWNER = "farlab.owner";
/** What an agent needs to rebuild the session when it adopts the container. */
export const LABEL_LANG = "farlab.lang";
export const LABEL_RESOURCES = "farlab.resources";
export const LABEL_GPUS = "farlab.gpus";
export const LABEL_REPLICA = "farlab.replica";
/** In the session's folder: the pid of the agent that holds the container's channel. */
const AGENT_PID_FILE = "agent.pid";
/** How long an adopting agent waits for a leftover runtime to reconnect (it tries every 200 ms). */
const RECONNECT_TIMEOUT_MS = 10_000;

export interface DockerBackendOptions {
  dataDir: string;
  /** The agent's id (`hello`), a label of every container. */
  agentId?: string;
  socketPath?: string;
  /** Image of sessions without image=. */
  defaultImage?: string;
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Whether a Docker engine answers on `socketPath` (the agent's default backend is then docker). */
export async function dockerAnswers(socketPath = DEFAULT_DOCKER_SOCKET, timeoutMs = 3000): Promise<boolean> {
  if (!fs.existsSync(socketPath)) return false;
  try {
    await new Docker({ socketPath, timeout: timeoutMs }).ping();
    return true;
  } catch {
    return false;
  }
}

export class DockerBackend implements Backend {
  readonly name = "docker";
  readonly docker: Docker;
  private readonly dataDir: string;
  private readonly agentId?: string;
  private readonly defaultImage: string;
  private readonly startTimeoutMs: number;
  private readonly log: (line: string) => void;

  constructor(options: DockerBackendOptions) {
    this.docker = new Docker({ socketPath: options.socketPath ?? DEFAULT_DOCKER_SOCKET });
    this.dataDir = options.dataDir;
    this.agentId = options.agentId;
    this.defaultImage = options.defaultImage ?? DEFAULT_IMAGE;
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    this.log = options.log ?? (() => undefined);
  }

  /**
   * The containers an earlier agent on this data dir left (it was killed, or it crashed): each
   * whose runtime reconnects to its channel (the runner retries for FARLAB_CHANNEL_RESUME_S) is
   * adopted; the others (exited, a %map worker, no runner answering, unreadable labels) are
   * removed. Containers whose agent is still alive (another `serve` on this data dir) are left
   * alone.
   */
  async adoptLeftovers(): Promise<LeftoverRuntime[]> {
    const leftovers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_DATA_DIR}=${this.dataDir}`] } });
    const adopted: LeftoverRuntime[] = [];
    await Promise.all(
      leftovers.map(async (info) => {
        const labels = info.Labels;
        const short = info.Id.slice(0, 12);
        const sessionDir = path.join(this.dataDir, "sessions", labels[LABEL_SPEC_ID] ?? "-");
        if (agentAlive(sessionDir)) return;
        const session = labels[LABEL_SESSION] ?? "?";
        const remove = async (why: string) => {
          this.log(`removing container ${short} of session ${session} left by an earlier agent: ${why}`);
          await this.docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
          removeSessionDirs(sessionDir, labels[LABEL_SPEC_ID]);
        };
        if (info.State !== "running") return remove(`it is ${info.State}`);
        if (labels[LABEL_REPLICA] || session.includes("/")) return remove("it is a %map worker");
        const settings = sessionSettings(labels);
        if (!settings) return remove("it has no session settings (made by an older agent)");
        try {
          const spec = { name: session, ...settings };
          const { handle, ready } = await this.connect(this.docker.getContainer(info.Id), spec, info.Image, RECONNECT_TIMEOUT_MS, false);
          adopted.push({
            runtime: handle,
            name: session,
            lang: settings.lang,
            resources: settings.resources,
            owner: labels[LABEL_OWNER],
            gpuUuids: (labels[LABEL_GPUS] ?? "").split(",").filter(Boolean),
            resume: ready.resume ?? { jobFirstSeq: 1, lastSeq: 0 },
          });
          this.log(`session ${session}: adopted container ${short}`);
        } catch (e) {
          await remove((e as Error).message); // connect() has killed it
        }
      }),
    );
    return adopted;
  }

  /** The create options of a session's container (exported for the tests' create-and-inspect). */
  containerOptions(spec: SessionSpec, channelDir: string, image = spec.resources.image ?? this.defaultImage): Docker.ContainerCreateOptions {
    const runtime = runtimeCommand(spec.lang, { runtimesDir: CONTAINER_RUNTIMES, node: CONTAINER_NODE, python: "python3" });
    // fd 1/2 go to FIFOs in the channel folder that the agent reads (fd-level capture with a
    // synchronous drain, as in the process backend); `exec` leaves the runtime as docker-init's child.
    // fd 3/4 hold the FIFOs open for reading inside the container too, so a write never fails
    // (EPIPE) while no agent reads them (between an agent's death and the next one's adoption):
    // the output waits in the pipe, and the runtime blocks once it is full.
    const out = `${CONTAINER_CHANNEL_DIR}/${STDOUT_FIFO}`;
    const err = `${CONTAINER_CHANNEL_DIR}/${STDERR_FIFO}`;
    const redirect = `exec "$@" 3<>${out} 4<>${err} >${out} 2>${err}`;
    const env: Record<string, string> = {
      ...runtime.env,
      FARLAB_CHANNEL: path.posix.join(CONTAINER_CHANNEL_DIR, CHANNEL_NAME),
      // The runtime outlives the agent: it reconnects (protocol/runner.ts). %map workers do not.
      ...(spec.replica ? {} : { FARLAB_CHANNEL_RESUME: "1" }),
      FARLAB_SESSION: spec.name,
      ...spec.env,
    };
    const binds = [
      `${process.execPath}:${CONTAINER_NODE}:ro`,
      `${RUNTIMES_DIR}:${CONTAINER_RUNTIMES}:ro`,
      `${channelDir}:${CONTAINER_CHANNEL_DIR}`,
      ...(spec.mounts ?? []).map((m) => `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`),
    ];
    const memory = spec.resources.memoryMiB ? Math.round(spec.resources.memoryMiB * 1024 * 1024) : undefined;
    return {
      Image: image,
      Cmd: ["/bin/sh", "-c", redirect, "farlab-runtime", runtime.command, ...runtime.args],
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: CONTAINER_WORK_DIR,
      Labels: {
        [LABEL_DATA_DIR]: this.dataDir,
        [LABEL_SESSION]: spec.name,
        [LABEL_SPEC_ID]: spec.id,
        [LABEL_LANG]: spec.lang,
        [LABEL_RESOURCES]: JSON.stringify(spec.resources),
        [LABEL_GPUS]: spec.gpus.map((gpu) => gpu.uuid).join(","),
        ...(spec.replica ? { [LABEL_REPLICA]: "1" } : {}),
        ...(this.agentId ? { [LABEL_AGENT_ID]: this.agentId } : {}),
        ...(spec.owner ? { [LABEL_OWNER]: spec.owner } : {}),
      },
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      HostConfig: {
        Init: true, // docker-init forwards SIGINT/SIGTERM to the runtime (a PID 1 would ignore them)
        Binds: binds,
        NanoCpus: spec.resources.cpu ? Math.round(spec.resources.cpu * 1e9) : undefined,
        Memory: memory,
        MemorySwap: memory, // equal: no swap on top of the limit
        PidsLimit: PIDS_LIMIT,
        ShmSize: SHM_SIZE_BYTES,
        DeviceRequests:
          spec.gpus.length > 0
            ? [{ Driver: "nvidia", DeviceIDs: spec.gpus.map((gpu) => gpu.uuid || String(gpu.index)), Capabilities: [["gpu"]] }]
            : undefined,
      },
    };
  }

  /**
   * Pulls `image` unless it is here, reporting progress (layers done, bytes) at most once a
   * second and at the end; a pull that cannot succeed is a RuntimeStartError saying why.
   * Returns the image's id.
   */
  async ensureImage(image: string, onProgress: (text: string) => void = () => undefined): Promise<string> {
    try {
      return (await this.docker.getImage(image).inspect()).Id;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw new RuntimeStartError(`docker: cannot inspect image ${image}: ${dockerMessage(e)}`);
    }
    const failed = (e: unknown) => new RuntimeStartError(`image ${image} not found locally, and pulling it failed: ${pullFailure(dockerMessage(e))}`);
    onProgress(`pulling image ${image}`);
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(image);
    } catch (e) {
      throw failed(e);
    }
    const progress = new PullProgress(image);
    let lastReport = 0;
    let failure: string | undefined; // the engine reports a failed pull as an event, not an HTTP error
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (error: unknown) => (error || failure ? reject(failed(error ?? new Error(failure))) : resolve()),
        (event: PullEvent) => {
          if (event.error) failure = event.error;
          progress.add(event);
          if (progress.layerCount > 0 && Date.now() - lastReport >= 1000) {
            lastReport = Date.now();
            onProgress(progress.describe());
          }
        },
      );
    });
    onProgress(`${progress.describe()}; done`);
    return (await this.docker.getImage(image).inspect()).Id;
  }

  /**
   * The image of a session: `image=` (or the default), pulled if missing; with apt= or pip=, an
   * image derived from it by a generated Dockerfile, built once and then found by its tag, which
   * is a hash of the base image's id and the Dockerfile (the cache key: same packages, same image).
   */
  async sessionImage(spec: SessionSpec): Promise<string> {
    const base = spec.resources.image ?? this.defaultImage;
    const report = (text: string) => {
      this.log(`session ${spec.name}: ${text}`);
      spec.onStatus?.(text);
    };
    const baseId = await this.ensureImage(base, report);
    const apt = spec.resources.apt ?? [];
    const pip = spec.resources.pip ?? [];
    if (apt.length === 0 && pip.length === 0) return base;
    const dockerfile = derivedDockerfile(base, apt, pip);
    const tag = `${DERIVED_REPOSITORY}:${createHash("sha256").update(`${baseId}\n${dockerfile}`).digest("hex").slice(0, 20)}`;
    const exists = await this.docker.getImage(tag).inspect().then(() => true, () => false);
    if (exists) return tag;
    await this.buildImage(tag, dockerfile, `${[apt.length ? `apt=${apt.join(",")}` : "", pip.length ? `pip=${pip.join(",")}` : ""].filter(Boolean).join(" ")} on ${base}`, report);
    return tag;
  }

  /** Builds `dockerfile` as `tag`, its log lines reported as it goes (steps always, the rest at most 2/s). */
  private async buildImage(tag: string, dockerfile: string, what: string, report: (text: string) => void): Promise<void> {
    const context = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-build-"));
    const log: string[] = [];
    let lastReport = 0;
    try {
      fs.writeFileSync(path.join(context, "Dockerfile"), dockerfile);
      report(`building image for ${what}`);
      // forcerm: a failed step's container is removed too (the engine keeps it otherwise).
      const stream = await this.docker.buildImage({ context, src: ["Dockerfile"] }, { t: tag, labels: { [LABEL_DERIVED]: what }, forcerm: true });
      const error = await new Promise<string | undefined>((resolve) => {
        let failure: string | undefined;
        this.docker.modem.followProgress(
          stream,
          (e: unknown) => resolve(e ? dockerMessage(e) : failure),
          (event: { stream?: string; error?: string }) => {
            if (event.error) failure = event.error.trim();
            for (const line of (event.stream ?? "").split("\n").map((l) => l.trimEnd()).filter(Boolean)) {
              log.push(line);
              if (log.length > BUILD_LOG_TAIL) log.shift();
              if (line.startsWith("Step ") || Date.now() - lastReport >= 500) {
                lastReport = Date.now();
                report(`build: ${line.slice(0, 300)}`);
              }
            }
          },
        );
      });
      if (error) throw new ImageBuildError(`building the image for ${what} failed: ${error}\n${log.join("\n")}`);
      report(`built image ${tag} for ${what}`);
    } catch (e) {
      if (e instanceof ImageBuildError) throw e;
      throw new ImageBuildError(`building the image for ${what} failed: ${dockerMessage(e)}`);
    } finally {
      fs.rmSync(context, { recursive: true, force: true });
    }
  }

  async startSession(spec: SessionSpec): Promise<RuntimeHandle> {
    const image = await this.sessionImage(spec);
    const sessionDir = path.join(this.dataDir, "sessions", spec.id);
    const channelDir = channelFolder(sessionDir, spec.id);
    fs.mkdirSync(sessionDir, { recursive: true });
    fs.mkdirSync(channelDir, { recursive: true });
    makeOutputFifos(channelDir);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(this.containerOptions(spec, channelDir, image));
    } catch (e) {
      removeSessionDirs(sessionDir, spec.id);
      throw new RuntimeStartError(`the ${spec.lang} runtime did not start: docker could not create its container: ${dockerMessage(e)}`);
    }
    const { handle } = await this.connect(container, spec, image, this.startTimeoutMs, true);
    return handle;
  }

  /**
   * Listens on the container's channel, opens its output FIFOs, starts it (`start`) or waits for
   * its runtime to reconnect (an adopted one), and resolves once the runner has said `ready`.
   * From then on the container is removed (and the session's folders) once it has exited; on
   * failure it is killed and removed, and the error says why.
   */
  private async connect(
    container: Docker.Container,
    spec: Pick<SessionSpec, "id" | "name" | "lang" | "resources">,
    image: string,
    timeoutMs: number,
    start: boolean,
  ): Promise<{ handle: RuntimeHandle; ready: Extract<FromRunner, { type: "ready" }> }> {
    const sessionDir = path.join(this.dataDir, "sessions", spec.id);
    const channelDir = channelFolder(sessionDir, spec.id);
    const short = container.id.slice(0, 12);
    const socketPath = path.join(channelDir, CHANNEL_NAME);
    const remove = () => container.remove({ force: true }).catch(() => undefined);
    let outputTail = "";
    const output = new FifoPoller(channelDir, (name, chunk) => {
      if (name === "stderr") outputTail = (outputTail + chunk.toString("utf8")).slice(-OUTPUT_TAIL_BYTES);
    });
    const closePipes = () => output.close(); // what the runtime wrote last is read first
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer();
    try {
      server.listen(socketPath);
      await once(server, "listening");
      fs.writeFileSync(path.join(sessionDir, AGENT_PID_FILE), String(process.pid));
    } catch (e) {
      server.close();
      closePipes();
      if (start) {
        await remove();
        removeSessionDirs(sessionDir, spec.id);
      }
      throw new RuntimeStartError(`the ${spec.lang} runtime's channel in ${channelDir} cannot be listened on: ${(e as Error).message}`);
    }
    const connection = once(server, "connection") as Promise<[net.Socket]>;
    if (start) {
      try {
        await container.start();
      } catch (e) {
        server.close();
        closePipes();
        await remove();
        removeSessionDirs(sessionDir, spec.id);
        throw new RuntimeStartError(`the ${spec.lang} runtime did not start in container ${short} (${image}): ${dockerMessage(e)}`);
      }
    }

    const exited: Promise<RuntimeExit> = container
      .wait()
      .then(async (result: { StatusCode?: number }) => {
        const state = await container.inspect().then((info) => info.State).catch(() => undefined);
        return containerExit(result.StatusCode ?? state?.ExitCode ?? null, Boolean(state?.OOMKilled), spec);
      })
      .catch((e: unknown) => {
        this.log(`session ${spec.name}: waiting for container ${short} failed: ${dockerMessage(e)}`);
        return { code: null, signal: null };
      })
      .finally(async () => {
        server.close();
        closePipes();
        await remove();
        removeSessionDirs(sessionDir, spec.id);
      });

    const signal = (name: NodeJS.Signals) => {
      container.kill({ signal: name }).catch(() => undefined); // 409: not running any more
    };
    const what = start ? "did not start" : "could not be adopted";
    const fail = async (why: string): Promise<never> => {
      signal("SIGKILL");
      await exited;
      const tail = outputTail.trim();
      throw new RuntimeStartError(`the ${spec.lang} runtime ${what} in container ${short} (${image}): ${why}${tail ? `\n${tail}` : ""}`);
    };

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    try {
      const first = await Promise.race([
        connection.then(([socket]) => ({ kind: "connected" as const, socket })),
        exited.then((exit) => ({ kind: "exited" as const, exit })),
        timeout.then(() => ({ kind: "timeout" as const })),
      ]);
      if (first.kind === "timeout") return await fail(`it did not connect to its channel within ${timeoutMs} ms`);
      if (first.kind === "exited") return await fail(`it exited (${describeExit(first.exit)}) before connecting`);
      const socket = first.socket;
      server.close();
      const messages = runnerMessages(socket, this.log);
      const ready = await Promise.race([
        messages.next().then((next) => ({ kind: "message" as const, message: next.done ? undefined : next.value })),
        exited.then((exit) => ({ kind: "exited" as const, exit })),
        timeout.then(() => ({ kind: "timeout" as const })),
      ]);
      if (ready.kind === "timeout") return await fail(`it did not say ready within ${timeoutMs} ms`);
      if (ready.kind === "exited") return await fail(`it exited (${describeExit(ready.exit)}) before saying ready`);
      if (ready.message?.type !== "ready") return await fail("its channel closed or it sent something other than `ready` first");
      this.log(`session ${spec.name}: ${spec.lang} runtime ${start ? "ready" : "reconnected"} in container ${short} (${image})`);
      const where = `container ${short} (${image}) on ${os.hostname()}`;
      return { handle: runtimeHandle({ where, pid: undefined, output, journalOutputAtOnce: true, messages, exited, socket, signal }), ready: ready.message };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A leftover container's session settings from its labels; undefined when it has none (an older agent's). */
function sessionSettings(labels: Record<string, string>): { id: string; lang: Lang; resources: Resources } | undefined {
  const id = labels[LABEL_SPEC_ID];
  const lang = labels[LABEL_LANG] as Lang | undefined;
  if (!id || !lang) return undefined;
  try {
    return { id, lang, resources: JSON.parse(labels[LABEL_RESOURCES] ?? "") as Resources };
  } catch {
    return undefined;
  }
}

/** Whether the agent that holds a session's channel (its pid file) is alive (and not this one). */
function agentAlive(sessionDir: string): boolean {
  return heldByAnotherLiveProcess(path.join(sessionDir, AGENT_PID_FILE));
}

function removeSessionDirs(sessionDir: string, id: string | undefined): void {
  if (id) fs.rmSync(channelFolder(sessionDir, id), { recursive: true, force: true });
  fs.rmSync(sessionDir, { recursive: true, force: true });
}

/** A new session's stdout/stderr FIFOs in its channel folder. */
function makeOutputFifos(channelDir: string): void {
  for (const name of [STDOUT_FIFO, STDERR_FIFO]) {
    const fifo = path.join(channelDir, name);
    fs.rmSync(fifo, { force: true });
    execFileSync("mkfifo", ["-m", "0666", fifo]);
  }
}

/** The channel's folder: in the session's folder, or in /tmp when that path is too long for a socket. */
function channelFolder(sessionDir: string, id: string): string {
  const inSession = path.join(sessionDir, "channel");
  return Buffer.byteLength(path.join(inSession, CHANNEL_NAME)) <= MAX_SOCKET_PATH ? inSession : path.join(os.tmpdir(), `farlab-${id}`);
}

/**
 * A container's exit as a RuntimeExit: tini exits 128+N when the runtime died of signal N; a
 * kill by the kernel's OOM killer carries an error that names the limit.
 */
function containerExit(code: number | null, oomKilled: boolean, spec: Pick<SessionSpec, "lang" | "resources">): RuntimeExit {
  const signalName =
    code !== null && code > 128 ? (Object.entries(os.constants.signals).find(([, n]) => n === code - 128)?.[0] as NodeJS.Signals | undefined) : undefined;
  const exit: RuntimeExit = signalName ? { code: null, signal: signalName } : { code, signal: null };
  if (oomKilled) {
    const limit = spec.resources.memoryMiB ? `memory=${spec.resources.memoryMiB}MiB` : "the host's memory";
    exit.error = {
      ename: "OutOfMemoryError",
      evalue: `the ${spec.lang} runtime ran out of memory (${limit}) and was killed; the next cell starts a new runtime, the session's state is lost`,
    };
  }
  return exit;
}

export interface PullEvent {
  error?: string;
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
}

const LAYER_STATUS = /^(Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|Pull complete|Already exists)/;

/** A pull's layers, from the engine's progress events: "pulling X: 2/5 layers, 31.2/80.0 MB". */
export class PullProgress {
  private readonly layers = new Map<string, { current: number; total: number; done: boolean }>();

  constructor(private readonly image: string) {}

  add(event: PullEvent): void {
    if (!event.id || !event.status || !LAYER_STATUS.test(event.status)) return; // "Pulling from", "Digest: ..."
    const layer = this.layers.get(event.id) ?? { current: 0, total: 0, done: false };
    if (event.status === "Downloading" && event.progressDetail?.total) {
      layer.current = event.progressDetail.current ?? 0;
      layer.total = event.progressDetail.total;
    }
    if (/^(Download complete|Pull complete|Already exists)/.test(event.status)) {
      layer.done = true;
      layer.current = layer.total;
    }
    this.layers.set(event.id, layer);
  }

  /** Layers seen so far (none before the engine has read the manifest). */
  get layerCount(): number {
    return this.layers.size;
  }

  describe(): string {
    const all = [...this.layers.values()];
    const done = all.filter((l) => l.done).length;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    const current = all.reduce((sum, l) => sum + l.current, 0);
    const total = all.reduce((sum, l) => sum + l.total, 0);
    return `pulling image ${this.image}: ${done}/${all.length} layers${total > 0 ? `, ${mb(current)}/${mb(total)} MB` : ""}`;
  }
}

/** Why a pull failed, in words, from the engine's message (which follows). */
export function pullFailure(message: string): string {
  if (/manifest unknown|not found|repository does not exist|pull access denied|name unknown/i.test(message)) {
    return `the registry has no such image (or it needs a \`docker login\`): ${message}`;
  }
  if (/connection refused|no such host|dial tcp|i\/o timeout|network is unreachable|TLS|certificate|server gave HTTP response/i.test(message)) {
    return `the registry is unreachable: ${message}`;
  }
  return message;
}

function dockerMessage(e: unknown): string {
  const error = e as { json?: { message?: string }; reason?: string; message?: string };
  return (error?.json?.message ?? error?.message ?? String(e)).trim();
}
