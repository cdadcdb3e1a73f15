/**
 * Named agents kept across kernels: ~/.config/farlab/agents.json (the folder of
 * ../transports/client-keys.ts: $FARLAB_CONFIG_DIR, else $XDG_CONFIG_HOME/farlab).
 *
 *   {
 *     "default": "gpu1",
 *     "agents": {
 *       "gpu1": { "url": "tcp://gpu1.example.org:7447", "server_key": "KEY" },
 *       "lab":  { "url": "ssh://me@lab", "command": "/opt/farlab/bin/farlab-agent" }
 *     }
 *   }
 *
 * `%remote connect URL name=NAME [--default]` writes it (atomically: a temporary file renamed into
 * place); a user may edit it by hand. A file that is not JSON or does not match this shape is an
 * AgentConfigError naming the file and the problem, never a silently ignored file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { farlabConfigDir } from "../transports/client-keys";
import { CellError } from "./errors";

/** Agent names: what `agent=NAME` accepts (not a URL, not "local"). */
export const AGENT_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,62}$/;

const AgentEntry = z
  .object({
    url: z.string().regex(/^(ssh|tcp):\/\/\S+$/i, "an ssh://[user@]host[:port] or tcp://HOST:PORT URL"),
    server_key: z.string().length(40).optional(),
    command: z.string().min(1).optional(),
  })
  .strict();
export type AgentEntry = z.infer<typeof AgentEntry>;

const AgentsFile = z
  .object({
    default: z.string().optional(),
    agents: z.record(z.string().regex(AGENT_NAME, "an agent name: a letter, then letters, digits, '.', '_' or '-'"), AgentEntry).default({}),
  })
  .strict()
  .refine((file) => file.default === undefined || file.default === "local" || file.default in file.agents, {
    message: "`default` must be \"local\" or the name of an agent in `agents`",
    path: ["default"],
  });
export type AgentsFile = z.infer<typeof AgentsFile>;

/** agents.json is malformed: the message names the file and what is wrong in it. */
export class AgentConfigError extends CellError {
  constructor(message: string) {
    super("AgentConfigError", message);
  }
}

export function agentsFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(farlabConfigDir(env), "agents.json");
}

/** The file's agents and default; an empty config when the file does not exist. */
export function readAgentsFile(file = agentsFilePath()): AgentsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { agents: {} };
    throw new AgentConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AgentConfigError(`${file} is not valid JSON (${(error as Error).message}); fix or delete it`);
  }
  const parsed = AgentsFile.safeParse(json);
  if (!parsed.success) {
    throw new AgentConfigError(
      `${file} does not describe agents: ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}. ` +
        'Expected {"default"?: NAME, "agents": {NAME: {"url": "ssh://..." | "tcp://...", "server_key"?: KEY, "command"?: CMD}}}',
    );
  }
  return parsed.data;
}

/** Changes the file under `update` (read, change, write to a temporary file, rename). */
export function updateAgentsFile(update: (config: AgentsFile) => void, file = agentsFilePath()): void {
  const config = readAgentsFile(file);
  update(config);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(temporary, file);
}
