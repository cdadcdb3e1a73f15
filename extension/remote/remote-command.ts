/**
 * `%remote SUBCOMMAND ...`: agents, sessions, jobs and notebook-wide defaults (shared/MAGICS.md).
 * `connect` adds an agent (./agents.ts), `attach` replays a job's whole output into the cell and
 * follows it (an interrupt stops following; the job runs on).
 */
import type { GpuInfo, JobInfo, SessionInfo } from "../../remote-agent/protocol/messages";
import { MagicUsageError } from "../magics/errors";
import { PlainText, subcommandSpec } from "../magics/help";
import type { FlagSpec, MagicContext, MagicHandler, OptionSpec, ParsedMagic } from "../magics/types";
import type { AgentClient } from "./agent-client";
import { agents, LOCAL_AGENT, type AgentRegistry } from "./agents";
import { KeyboardInterrupt } from "./errors";
import { JobRenderer } from "./job-renderer";
import { finishJob } from "./remote-magic";
import { REMOTE_FLAGS, REMOTE_OPTIONS, remoteDefaults, type RemoteDefaults, type RemoteOptionValues } from "./remote-options";
import { report, type Table } from "./tables";

type Subcommand = (magic: ParsedMagic, client: () => AgentClient, ctx: MagicContext) => Promise<unknown>;

/** What `%remote connect` takes besides agent options. */
const CONNECT_OPTIONS: readonly OptionSpec[] = [
  { name: "name", type: { kind: "string" }, help: "connect: keep the agent under this name (also in ~/.config/farlab/agents.json)" },
  { name: "server_key", type: { kind: "string" }, help: "connect tcp://: the agent's CURVE public key (`farlab-agent keys`)" },
  { name: "command", type: { kind: "string" }, help: "connect ssh://: the agent program on the host (default farlab-agent)" },
];
const CONNECT_FLAGS: readonly FlagSpec[] = [
  { name: "default", help: "connect: make it the default agent of %%remote" },
  { name: "trust-new-host", help: "connect ssh://: accept and record the key of a host not in known_hosts" },
];

export function createRemoteCommandMagic(registry: AgentRegistry = agents, defaults: RemoteDefaults = remoteDefaults): MagicHandler {
  const subcommands: Record<string, { usage: string; run: Subcommand; takesName?: boolean }> = {
    status: { usage: "status [agent=NAME]", run: (_m, client) => status(client(), registry) },
    sessions: { usage: "sessions [agent=NAME]", run: async (_m, client) => sessionsReport(client()) },
    stop: {
      usage: "stop NAME [agent=NAME]",
      takesName: true,
      run: async (m, client) => {
        await client().request({ type: "session_stop", name: m.positionals[1] });
        return new PlainText(`stopped session '${m.positionals[1]}' on agent '${client().name}'`);
      },
    },
    restart: {
      usage: "restart NAME [agent=NAME]",
      takesName: true,
      run: async (m, client) => {
        await client().request({ type: "session_restart", name: m.positionals[1] });
        return new PlainText(`restarted session '${m.positionals[1]}' on agent '${client().name}': its state is cleared`);
      },
    },
    jobs: { usage: "jobs [agent=NAME]", run: async (_m, client) => jobsReport(client()) },
    attach: { usage: "attach JOB [agent=NAME]", takesName: true, run: (m, client, ctx) => attach(m.positionals[1], client(), ctx) },
    connect: {
      usage: "connect URL|local [name=NAME] [--default] [server_key=KEY] [command=CMD] [--trust-new-host]",
      takesName: true,
      run: (m) => connect(m, registry),
    },
    config: { usage: "config [key=value ...] [--fresh] | config reset", run: async (m) => configure(m, defaults) },
  };

  return {
    spec: {
      name: "remote",
      kind: "line",
      help: "agents, sessions, jobs and notebook-wide %%remote defaults",
      ...subcommandSpec(subcommands),
      positionals: [1, 2],
      options: [...REMOTE_OPTIONS, ...CONNECT_OPTIONS],
      flags: [...REMOTE_FLAGS, ...CONNECT_FLAGS],
    },
    run: async (magic, ctx) => {
      const name = magic.positionals[0];
      const subcommand = subcommands[name];
      checkArguments(magic, name, subcommand.usage, subcommand.takesName ?? false);
      return subcommand.run(magic, () => registry.client(magic.options.agent as string | undefined), ctx);
    },
  };
}

/** The parser checked the subcommand and the option kinds; what each subcommand accepts is checked here. */
function checkArguments(magic: ParsedMagic, name: string, usage: string, takesName: boolean): void {
  const fail = (what: string): never => {
    throw new MagicUsageError(`%remote ${name}: ${what} (usage: %remote ${usage})`);
  };
  const connectOnly = [...CONNECT_OPTIONS.map((o) => o.name).filter((o) => o in magic.options), ...CONNECT_FLAGS.map((f) => f.name).filter((f) => magic.flags.has(f))];
  if (name === "connect") {
    if (magic.positionals.length < 2) fail("missing the agent's URL (ssh://[user@]host[:port], tcp://HOST:PORT or local)");
    const others = Object.keys(magic.options).filter((k) => !CONNECT_OPTIONS.some((o) => o.name === k));
    const otherFlags = [...magic.flags].filter((f) => !CONNECT_FLAGS.some((c) => c.name === f)).map((f) => `--${f}`);
    if (others.length + otherFlags.length > 0) fail(`${[...others, ...otherFlags].join(", ")} is not accepted here`);
    return;
  }
  if (connectOnly.length > 0) fail(`${connectOnly.join(", ")} belongs to %remote connect`);
  if (name === "config") {
    const extra = magic.positionals[1];
    if (extra !== undefined && extra !== "reset") fail(`unexpected argument '${extra}'`);
    return;
  }
  if (takesName && magic.positionals.length < 2) fail(name === "attach" ? "missing the JOB id (`%remote jobs` lists them)" : "missing the session NAME");
  if (!takesName && magic.positionals.length > 1) fail(`unexpected argument '${magic.positionals[1]}'`);
  const others = [...Object.keys(magic.options).filter((k) => k !== "agent"), ...[...magic.flags].map((f) => `--${f}`)];
  if (others.length > 0) fail(`${others.join(", ")} is not accepted here; only agent= is`);
}

async function configure(magic: ParsedMagic, defaults: RemoteDefaults): Promise<unknown> {
  if (magic.positionals[1] === "reset") {
    defaults.reset();
    return new PlainText("%%remote defaults cleared");
  }
  // key="" removes a default; other values are checked exactly like %%remote's options.
  const set: RemoteOptionValues = {};
  for (const [key, value] of Object.entries(magic.options)) {
    if (value === "") defaults.unset(key);
    else set[key] = value;
  }
  defaults.set(set, magic.flags);
  const lines = defaults.describe();
  return new PlainText(lines.length ? `%%remote defaults: ${lines.join(" ")}` : "%%remote defaults: none (set them with %remote config key=value ...)");
}

async function connect(magic: ParsedMagic, registry: AgentRegistry): Promise<unknown> {
  const url = magic.positionals[1];
  const str = (key: string) => (magic.options[key] === undefined ? undefined : String(magic.options[key]));
  if (url === LOCAL_AGENT && (str("server_key") || str("command") || magic.flags.has("trust-new-host") || str("name"))) {
    throw new MagicUsageError("%remote connect local takes only --default: the embedded agent needs no address, key or name");
  }
  const client = await registry.connect({
    url,
    name: str("name"),
    serverKey: str("server_key"),
    command: str("command"),
    trustNewHost: magic.flags.has("trust-new-host"),
    makeDefault: magic.flags.has("default"),
  });
  const info = client.agentInfo;
  const kept = str("name") ? `; kept in ${registry.agentsFile}` : "";
  const isDefault = magic.flags.has("default") ? "; it is now the default agent of %%remote" : "";
  return new PlainText(
    `connected to agent '${client.name}'${url === client.name ? "" : ` (${url})`}: farlab-agent ${info?.agentVersion ?? "?"}, ` +
      `backend ${info?.backend ?? "?"}, agent id ${info?.agentId ?? "?"}${kept}${isDefault}`,
  );
}

/**
 * Replays the whole output of a job (one this user started, in this kernel or an earlier one)
 * and follows it to its end; the job's end becomes the cell's end, as for %%remote. An interrupt
 * stops following without stopping the job.
 */
async function attach(jobId: string, client: AgentClient, ctx: MagicContext): Promise<unknown> {
  const stream = await client.attach(jobId, 0);
  const detach = () => stream.fail(new KeyboardInterrupt(`stopped following job ${jobId}; it runs on on agent '${client.name}' (\`%remote attach ${jobId}\` follows it again)`));
  if (ctx.signal.aborted) detach();
  else ctx.signal.addEventListener("abort", detach, { once: true });
  try {
    // The whole output, as asked: no stream limit here (a %%remote cell's notice points here).
    const outcome = await new JobRenderer(ctx, jobId, { limitChars: Infinity }).render(stream);
    return finishJob(outcome, {}, client);
  } finally {
    ctx.signal.removeEventListener("abort", detach);
  }
}

async function status(client: AgentClient, registry: AgentRegistry): Promise<unknown> {
  const reply = await client.request({ type: "status" });
  const heading = `agent '${client.name}' (${reply.agentId}, farlab-agent ${reply.agentVersion}), backend ${reply.backend}`;
  const active = reply.jobs.filter((j) => j.state !== "done");
  const agentTable: Table = {
    title: "Agents",
    headers: ["name", "default", "connection", "state"],
    rows: registry
      .names()
      .map((name) => [name, registry.isDefault(name) ? "yes" : "", registry.describe(name), registry.isStarted(name) ? "in use" : "not started"]),
    empty: "none",
  };
  return report(heading, [agentTable, gpuTable(reply.gpus), sessionTable(reply.sessions), jobTable("Running and queued jobs", active)]);
}

async function sessionsReport(client: AgentClient): Promise<unknown> {
  const reply = await client.request({ type: "sessions" });
  return report(`agent '${client.name}'`, [sessionTable(reply.sessions)]);
}

async function jobsReport(client: AgentClient): Promise<unknown> {
  const reply = await client.request({ type: "jobs" });
  return report(`agent '${client.name}'`, [jobTable("Jobs (running and recent)", reply.jobs)]);
}

function gpuTable(gpus: GpuInfo[]): Table {
  return {
    title: "GPUs",
    headers: ["index", "type", "memory", "used", "free", "held by"],
    rows: gpus.map((g) => [
      String(g.index),
      g.name,
      mib(g.memoryTotalMiB),
      mib(g.memoryUsedMiB),
      mib(Math.max(0, g.memoryTotalMiB - g.memoryUsedMiB)),
      g.heldBy ?? "free",
    ]),
    empty: "none",
  };
}

function sessionTable(sessions: SessionInfo[]): Table {
  return {
    title: "Sessions",
    headers: ["name", "lang", "backend", "resources", "GPUs", "state", "cells", "started"],
    rows: sessions.map((s) => [
      s.name,
      s.lang,
      s.backend,
      describeResources(s.resources),
      s.gpus.join(",") || "-",
      s.state,
      String(s.cells),
      clock(s.startedAt),
    ]),
    empty: "none",
  };
}

function jobTable(title: string, jobs: JobInfo[]): Table {
  return {
    title,
    headers: ["job", "session", "state", "status", "started", "ended", "code"],
    rows: jobs.map((j) => [
      j.jobId,
      j.session,
      j.state,
      j.status ?? "",
      j.startedAt ? clock(j.startedAt) : "",
      j.endedAt ? clock(j.endedAt) : "",
      j.codePreview.trim().split("\n")[0].slice(0, 40),
    ]),
    empty: "none",
  };
}

function describeResources(r: SessionInfo["resources"]): string {
  const parts: string[] = [];
  if (r.gpu) parts.push(`gpu=${r.gpu}`);
  if (r.cpu !== undefined) parts.push(`cpu=${r.cpu}`);
  if (r.memoryMiB !== undefined) parts.push(`memory=${mib(r.memoryMiB)}`);
  if (r.image) parts.push(`image=${r.image}`);
  if (r.volumes?.length) parts.push(`volumes=${r.volumes.map((v) => `${v.name}:${v.mountPath}${v.readOnly ? ":ro" : ""}`).join(",")}`);
  if (r.secrets?.length) parts.push(`secrets=${r.secrets.join(",")}`);
  return parts.join(" ") || "-";
}

function mib(value: number): string {
  return value >= 1024 ? `${(value / 1024).toFixed(1)} GiB` : `${Math.round(value)} MiB`;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}
