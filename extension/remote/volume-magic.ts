/**
 * `%volume SUBCOMMAND ...`: persistent named volumes on an agent (shared/MAGICS.md, docs/volumes.md).
 *
 *   create NAME | list | ls NAME [PATH] | put NAME LOCAL [PATH] | get NAME PATH [LOCAL]
 *   rm NAME PATH [-r] | delete NAME --yes          (all take agent=)
 *
 * Local paths are relative to the kernel's working folder (the notebook's). `put` without PATH
 * puts LOCAL under its own name at the volume's root; a PATH ending in '/' puts it inside that
 * folder. `get` without LOCAL writes PATH's last part into the working folder; a LOCAL that is an
 * existing folder (or ends in '/') receives it inside. Transfers show one progress bar (bytes,
 * rate, ETA) and end with a one-line summary.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { VolumeEntry } from "../../remote-agent/protocol/messages";
import { VOLUME_NAME } from "../../remote-agent/volumes/paths";
import { formatBytes } from "../../kernel/display/progress";
import { MagicUsageError } from "../magics/errors";
import { PlainText, subcommandSpec } from "../magics/help";
import type { MagicContext, MagicHandler, ParsedMagic } from "../magics/types";
import type { AgentClient } from "./agent-client";
import { agents, type AgentRegistry } from "./agents";
import { AgentRequestError } from "./errors";
import { report } from "./tables";
import { getPath, putPath, type TransferResult } from "./volume-transfer";

interface Subcommand {
  usage: string;
  /** Positionals after the subcommand: [min, max]. */
  args: [number, number];
  flags?: string[];
  run(args: string[], magic: ParsedMagic, client: AgentClient, ctx: MagicContext): Promise<unknown>;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  create: {
    usage: "create NAME",
    args: [1, 1],
    run: async ([name], _m, client) => {
      const reply = await client.request({ type: "volume_create", name });
      return new PlainText(reply.created ? `created volume '${name}' on agent '${client.name}'` : `volume '${name}' already exists on agent '${client.name}'`);
    },
  },
  list: {
    usage: "list",
    args: [0, 0],
    run: async (_a, _m, client) => {
      const reply = await client.request({ type: "volume_list" });
      return report(`agent '${client.name}'`, [
        {
          title: "Volumes",
          headers: ["name", "size", "files", "mounted by"],
          rows: reply.volumes.map((v) => [v.name, formatBytes(v.bytes), String(v.files), v.mountedBy.join(", ") || "-"]),
          empty: "none (make one with %volume create NAME)",
        },
      ]);
    },
  },
  ls: {
    usage: "ls NAME [PATH]",
    args: [1, 2],
    run: async ([name, where = ""], _m, client) => {
      const reply = await client.request({ type: "volume_ls", name, path: where });
      return report(`volume '${name}' on agent '${client.name}': /${reply.path}`, [
        { title: "Entries", headers: ["name", "type", "size", "modified"], rows: reply.entries.map(entryRow), empty: "empty" },
      ]);
    },
  },
  put: {
    usage: "put NAME LOCAL [PATH]",
    args: [2, 3],
    run: async ([name, local, target], _m, client, ctx) => {
      const source = path.resolve(local);
      if (!fs.existsSync(source)) throw new MagicUsageError(`%volume put: the local path '${local}' does not exist (relative paths start at ${process.cwd()})`);
      const remote = target === undefined ? path.basename(source) : target.endsWith("/") ? target + path.basename(source) : target;
      const result = await withProgress(ctx, `put ${local} -> ${name}:/${remote}`, (options) => putPath(client, name, source, remote, options));
      return new PlainText(`uploaded ${summary(result)} to volume '${name}' at /${remote} ${rate(result)}`);
    },
  },
  get: {
    usage: "get NAME PATH [LOCAL]",
    args: [2, 3],
    run: async ([name, remote, local], _m, client, ctx) => {
      const last = remote.split("/").filter(Boolean).pop() ?? name;
      let destination = local ?? last;
      if (local !== undefined && (local.endsWith("/") || isFolder(local))) destination = path.join(local, last);
      const result = await withProgress(ctx, `get ${name}:/${remote} -> ${destination}`, (options) => getPath(client, name, remote, destination, options));
      return new PlainText(`downloaded ${summary(result)} from volume '${name}' to ${path.resolve(destination)} ${rate(result)}`);
    },
  },
  rm: {
    usage: "rm NAME PATH [-r]",
    args: [2, 2],
    flags: ["r"],
    run: async ([name, where], magic, client) => {
      const reply = await client.request({ type: "volume_rm", name, path: where, recursive: magic.flags.has("r") });
      return new PlainText(`removed '${where}' from volume '${name}' (${reply.removed} file${reply.removed === 1 ? "" : "s"})`);
    },
  },
  delete: {
    usage: "delete NAME --yes",
    args: [1, 1],
    flags: ["yes"],
    run: async ([name], magic, client) => {
      if (!magic.flags.has("yes")) {
        throw new MagicUsageError(`%volume delete removes volume '${name}' and every file in it; confirm with --yes (%volume delete ${name} --yes)`);
      }
      await client.request({ type: "volume_delete", name });
      return new PlainText(`deleted volume '${name}' on agent '${client.name}'`);
    },
  },
};

export function createVolumeMagic(registry: AgentRegistry = agents): MagicHandler {
  return {
    spec: {
      name: "volume",
      kind: "line",
      help: "persistent named volumes on an agent: create, list, ls, put, get, rm, delete",
      ...subcommandSpec(SUBCOMMANDS),
      positionals: [1, 4],
      options: [{ name: "agent", type: { kind: "string" }, help: "agent whose volumes to use; default: the default agent" }],
      flags: [
        { name: "r", help: "rm: remove a folder and everything in it" },
        { name: "yes", help: "delete: confirm deleting the whole volume" },
      ],
    },
    run: async (magic, ctx) => {
      const [name, ...args] = magic.positionals;
      const subcommand = SUBCOMMANDS[name];
      const usage = `usage: %volume ${subcommand.usage} [agent=NAME]`;
      if (args.length < subcommand.args[0]) throw new MagicUsageError(`%volume ${name}: missing arguments (${usage})`);
      if (args.length > subcommand.args[1]) throw new MagicUsageError(`%volume ${name}: unexpected argument '${args[subcommand.args[1]]}' (${usage})`);
      for (const flag of magic.flags) {
        if (!subcommand.flags?.includes(flag)) throw new MagicUsageError(`%volume ${name}: ${flag.length === 1 ? "-" : "--"}${flag} is not accepted here (${usage})`);
      }
      if (name !== "list" && !VOLUME_NAME.test(args[0])) {
        throw new MagicUsageError(`%volume ${name}: '${args[0]}' is not a volume name; accepted: ${VOLUME_NAME.source}`);
      }
      const client = registry.client(magic.options.agent as string | undefined);
      try {
        return await subcommand.run(args, magic, client, ctx);
      } catch (error) {
        // What only the agent can check (an escaping path, a mounted volume) is a usage error too.
        if (error instanceof AgentRequestError && error.code === "usage") throw new MagicUsageError(error.message);
        throw error;
      }
    },
  };
}

/** Runs a transfer with one progress bar (bytes, rate, ETA), closed however it ends. */
async function withProgress(
  ctx: MagicContext,
  description: string,
  transfer: (options: { onProgress: (done: number, total: number) => void; signal: AbortSignal }) => Promise<TransferResult>,
): Promise<TransferResult & { seconds: number }> {
  const started = Date.now();
  const bar = ctx.display.progress({ description, unit: "bytes" });
  try {
    const result = await transfer({ onProgress: (done, total) => bar.set(done, total), signal: ctx.signal });
    return { ...result, seconds: (Date.now() - started) / 1000 };
  } finally {
    bar.done();
  }
}

function summary(result: TransferResult): string {
  const files = result.kind === "dir" ? `${result.files} file${result.files === 1 ? "" : "s"}, ` : "";
  return `${result.kind === "dir" ? "a folder: " : ""}${files}${formatBytes(result.dataBytes)}`;
}

function rate(result: TransferResult & { seconds: number }): string {
  const perSecond = result.seconds > 0 ? ` (${formatBytes(result.dataBytes / result.seconds)}/s)` : "";
  return `in ${result.seconds.toFixed(1)} s${perSecond}`;
}

function entryRow(entry: VolumeEntry): string[] {
  return [entry.type === "dir" ? `${entry.name}/` : entry.name, entry.type, entry.type === "dir" ? "-" : formatBytes(entry.size), new Date(entry.mtime).toISOString().slice(0, 19).replace("T", " ")];
}

function isFolder(local: string): boolean {
  try {
    return fs.statSync(local).isDirectory();
  } catch {
    return false;
  }
}
