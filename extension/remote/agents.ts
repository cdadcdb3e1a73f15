/**
 * The agents this kernel knows, by name, each with one lazily connected AgentClient shared by all
 * magics (`agent=` on every magic resolves here):
 * - `local`: the embedded agent (a child process over stdio), the default unless one is chosen;
 * - agents connected in this kernel with `%remote connect URL [name=NAME]` (by name, or by URL);
 * - named agents of ~/.config/farlab/agents.json (./agent-config.ts), read when first named;
 * - a bare URL (`agent=ssh://me@gpu1`): connected on first use with default settings.
 * The default agent is the one `%remote connect ... --default` chose (also kept in agents.json
 * when the agent has a name), else agents.json's `default`, else `local`.
 */
import * as os from "node:os";
import { MagicUsageError } from "../magics/errors";
import { curveUser, makeUserProof } from "../../remote-agent/keys/user-proof";
import { clientKeyPair } from "../transports/client-keys";
import { TransportError } from "../transports/errors";
import { connectorFor, isRemoteAgentUrl, type RemoteAgentAddress } from "../transports/index";
import { AgentClient, type Connector } from "./agent-client";
import { AGENT_NAME, agentsFilePath, readAgentsFile, updateAgentsFile, type AgentEntry } from "./agent-config";
import { spawnEmbeddedAgent } from "./embedded-agent";

export const LOCAL_AGENT = "local";

interface KnownAgent {
  connector: Connector;
  describe: string;
  /** The embedded agent never reconnects: if it died, its runtimes (and their jobs) died with it. */
  reconnects: boolean;
  /** tcp:// agents: the agent's public key, to prove this client's user to it. */
  serverKey?: string;
}

export interface AgentRegistryOptions {
  /** agents.json; default ~/.config/farlab/agents.json. */
  configFile?: string;
  /** The embedded agent's connector (tests). */
  local?: Connector;
  /** Reconnect attempts of remote agents after a drop. */
  reconnectAttempts?: number;
}

/** What `%remote connect` was given. */
export interface ConnectRequest extends RemoteAgentAddress {
  name?: string;
  makeDefault?: boolean;
}

export class AgentRegistry {
  private readonly known = new Map<string, KnownAgent>();
  private readonly clients = new Map<string, AgentClient>();
  private chosenDefault: string | undefined;
  private readonly configFile: string;
  private readonly reconnectAttempts: number;

  constructor(options: AgentRegistryOptions = {}) {
    this.configFile = options.configFile ?? agentsFilePath();
    this.reconnectAttempts = options.reconnectAttempts ?? 12;
    this.known.set(LOCAL_AGENT, {
      connector: options.local ?? (() => spawnEmbeddedAgent()),
      describe: "embedded: a child process over stdio",
      reconnects: false,
    });
  }

  /** Adds (or replaces) an agent under `name`. */
  add(name: string, connector: Connector, describe = "remote"): void {
    this.replace(name, { connector, describe, reconnects: name !== LOCAL_AGENT });
  }

  /** How an agent is reached, for %remote status. */
  describe(name: string): string {
    return this.known.get(name)?.describe ?? this.fileEntryOf(name)?.url ?? "unknown";
  }

  isDefault(name: string): boolean {
    return name === this.defaultName();
  }

  /** Whether the agent's client has been made (i.e. it was used in this kernel). */
  isStarted(name: string): boolean {
    return this.clients.has(name);
  }

  /** Agents of this kernel and of agents.json. */
  names(): string[] {
    const fromFile = Object.keys(this.readFile().agents);
    return [...new Set([...this.known.keys(), ...fromFile])];
  }

  defaultName(): string {
    return this.chosenDefault ?? this.readFile().default ?? LOCAL_AGENT;
  }

  /** The name `agent=` resolves to: the given name or URL, or the default agent. */
  resolve(name: string | undefined): string {
    const chosen = name ?? this.defaultName();
    if (this.known.has(chosen)) return chosen;
    if (isRemoteAgentUrl(chosen)) {
      this.replace(chosen, this.knownFor({ url: chosen }, chosen));
      return chosen;
    }
    const entry = this.fileEntryOf(chosen);
    if (entry) {
      this.replace(chosen, this.knownFor(addressOf(entry), entry.url));
      return chosen;
    }
    const names = this.names();
    throw new MagicUsageError(
      `unknown agent '${chosen}': agent= takes ${names.map((n) => `'${n}'`).join(", ")}, or a URL ` +
        "(ssh://[user@]host[:port], tcp://HOST:PORT). Add one with `%remote connect URL name=NAME`, " +
        `or in ${this.configFile}.`,
    );
  }

  /** The shared client of an agent (connected on its first request). */
  client(name: string | undefined): AgentClient {
    const resolved = this.resolve(name);
    let client = this.clients.get(resolved);
    if (!client) {
      client = this.newClient(resolved, this.known.get(resolved)!);
      this.clients.set(resolved, client);
    }
    return client;
  }

  private newClient(name: string, known: KnownAgent): AgentClient {
    return new AgentClient(known.connector, {
      name,
      reconnectAttempts: known.reconnects ? this.reconnectAttempts : 0,
      ...userOf(known),
    });
  }

  /**
   * `%remote connect`: connects now (so a refused key or host key shows in that cell), then keeps
   * the agent under its name (and in agents.json) or its URL, and makes it the default if asked.
   */
  async connect(request: ConnectRequest): Promise<AgentClient> {
    const key = request.name ?? (request.url === LOCAL_AGENT ? LOCAL_AGENT : request.url);
    if (request.name !== undefined && (request.name === LOCAL_AGENT || !AGENT_NAME.test(request.name))) {
      throw new MagicUsageError(`name=${request.name}: an agent name is a letter, then letters, digits, '.', '_' or '-' (and not 'local')`);
    }
    let client: AgentClient;
    if (request.url === LOCAL_AGENT) {
      client = this.client(LOCAL_AGENT);
      await client.request({ type: "status" });
    } else {
      // A failed connect leaves what this kernel knew under that name as it was.
      const known = this.knownFor(request, request.url);
      client = this.newClient(key, known);
      try {
        await client.request({ type: "status" });
      } catch (error) {
        client.close();
        throw error;
      }
      this.replace(key, known);
      this.clients.set(key, client);
    }
    if (request.name !== undefined) {
      updateAgentsFile((config) => {
        config.agents[request.name!] = {
          url: request.url,
          ...(request.serverKey ? { server_key: request.serverKey } : {}),
          ...(request.command ? { command: request.command } : {}),
        };
        if (request.makeDefault) config.default = request.name;
      }, this.configFile);
    } else if (request.makeDefault && key === LOCAL_AGENT) {
      updateAgentsFile((config) => (config.default = undefined), this.configFile);
    }
    if (request.makeDefault) this.chosenDefault = key;
    return client;
  }

  get agentsFile(): string {
    return this.configFile;
  }

  closeAll(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private replace(name: string, known: KnownAgent): void {
    this.known.set(name, known);
    const old = this.clients.get(name);
    if (old) {
      old.close();
      this.clients.delete(name);
    }
  }

  private knownFor(address: RemoteAgentAddress, describe: string): KnownAgent {
    try {
      return { connector: connectorFor(address), describe, reconnects: true, serverKey: address.serverKey };
    } catch (error) {
      // A bad URL or a missing server_key: found before anything is sent, like any usage error.
      if (error instanceof TransportError) throw new MagicUsageError(error.message);
      throw error;
    }
  }

  private readFile() {
    return readAgentsFile(this.configFile);
  }

  private fileEntryOf(name: string): AgentEntry | undefined {
    return Object.hasOwn(this.readFile().agents, name) ? this.readFile().agents[name] : undefined;
  }
}

function addressOf(entry: AgentEntry): RemoteAgentAddress {
  return { url: entry.url, serverKey: entry.server_key, command: entry.command };
}

/**
 * This user's identity towards remote agents: the CURVE public key (made on first use, as for
 * `farlab keys`), the same in every kernel, so a new kernel sees and attaches to the jobs that
 * an earlier one started. A ZeroMQ agent checks it by the CURVE handshake itself.
 */
function userOf(known: KnownAgent): { user: string; userProof?: string } {
  if (!known.reconnects) return { user: `local:${os.userInfo().username}` };
  if (known.serverKey) {
    const { user, proof } = makeUserProof(clientKeyPair(), known.serverKey);
    return { user, userProof: proof };
  }
  return { user: curveUser(clientKeyPair().publicKey) };
}

/** The kernel-wide registry: one per executor process, shared by %%remote, %remote, %map, ... */
export const agents = new AgentRegistry();
