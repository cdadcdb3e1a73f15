/**
 * The agents this kernel knows, by name, each with one lazily connected AgentClient shared by all
 * magics. Today that is "local", the embedded agent. Named agents and URLs (`agent=gpu1`,
 * `ssh://...`, `tcp://...`) come with `%remote connect` and ~/.config/farlab/agents.json: they
 * will add entries here with their own Connector, and nothing above this module changes.
 */
import { MagicUsageError } from "../magics/errors";
import { AgentClient, type Connector } from "./agent-client";
import { spawnEmbeddedAgent } from "./embedded-agent";

export const LOCAL_AGENT = "local";

export class AgentRegistry {
  private readonly connectors = new Map<string, { connector: Connector; describe: string }>();
  private readonly clients = new Map<string, AgentClient>();
  private defaultName = LOCAL_AGENT;

  constructor() {
    // The embedded agent never reconnects: if it died, its runtimes (and their jobs) died with it.
    this.add(LOCAL_AGENT, () => spawnEmbeddedAgent(), "embedded: a child process over stdio");
  }

  add(name: string, connector: Connector, describe = "remote"): void {
    this.connectors.set(name, { connector, describe });
  }

  /** How an agent is reached, for %remote status. */
  describe(name: string): string {
    return this.connectors.get(name)?.describe ?? "unknown";
  }

  isDefault(name: string): boolean {
    return name === this.defaultName;
  }

  /** Whether the agent's client has been made (i.e. it was used in this kernel). */
  isStarted(name: string): boolean {
    return this.clients.has(name);
  }

  names(): string[] {
    return [...this.connectors.keys()];
  }

  /** The name `agent=` resolves to: the given one, or the default agent. */
  resolve(name: string | undefined): string {
    const chosen = name ?? this.defaultName;
    if (this.connectors.has(chosen)) return chosen;
    const what = /^[a-z][a-z0-9+.-]*:\/\//i.test(chosen) ? `agent URL '${chosen}'` : `unknown agent '${chosen}'`;
    throw new MagicUsageError(
      `${what}: this kernel knows only ${this.names().map((n) => `'${n}'`).join(", ")} (the embedded agent). ` +
        "Named agents and ssh:// or tcp:// URLs come with `%remote connect`, which is not available yet.",
    );
  }

  /** The shared client of an agent (connected on its first request). */
  client(name: string | undefined): AgentClient {
    const resolved = this.resolve(name);
    let client = this.clients.get(resolved);
    if (!client) {
      client = new AgentClient(this.connectors.get(resolved)!.connector, {
        name: resolved,
        reconnectAttempts: resolved === LOCAL_AGENT ? 0 : 3,
      });
      this.clients.set(resolved, client);
    }
    return client;
  }

  closeAll(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** The kernel-wide registry: one per executor process, shared by %%remote, %remote, %map, ... */
export const agents = new AgentRegistry();
