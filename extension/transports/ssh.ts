/**
 * Client side of an SSH agent (`ssh://[user@]host[:port]`, the host may be a ~/.ssh/config
 * alias): ssh2 logs in, runs `COMMAND serve --stdio` (default `farlab-agent`), and the agent
 * protocol's length-prefixed frames travel over that exec channel, as over the embedded agent's
 * stdio (../../remote-agent/protocol/framing.ts).
 *
 * - Host keys are checked against known_hosts (./known-hosts.ts) before anything is sent: an
 *   unknown host is refused unless `trustNewHost` (which records it), a changed or revoked key is
 *   always refused, naming the file and line to fix.
 * - Login: ssh-agent ($SSH_AUTH_SOCK) first, then key files (IdentityFile from the config, else
 *   ~/.ssh/id_ed25519, id_ecdsa, id_rsa). Passphrase-protected files are skipped (load them into
 *   ssh-agent): a kernel cannot prompt for them.
 * - ProxyJump: each hop is a full SSH connection (its own host key check), and the next one runs
 *   over a `direct-tcpip` channel of the previous one (forwardOut), like `ssh -J`.
 * - Keepalives: a silent link is noticed, the transport ends with an error, and AgentClient
 *   reconnects and resumes its jobs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Duplex } from "node:stream";
import { Client, utils, type AnyAuthMethod, type ClientChannel, type ConnectConfig } from "ssh2";
import { StreamTransport, type Transport } from "../../remote-agent/protocol/framing";
import { HostKeyError, SshError } from "./errors";
import { checkHostKey, fingerprint, knownHostName, keyTypeOf, recordHostKey, recordedKeyTypes } from "./known-hosts";
import { defaultSshConfigFile, parseSshUrl, resolveSshTarget, type SshTarget } from "./ssh-target";

export interface SshConnectOptions {
  /** ssh://[user@]host[:port] */
  url: string;
  /** The agent program on the host; run as `COMMAND serve --stdio [serveArgs]`. */
  command?: string;
  /** Extra arguments after `serve --stdio` (e.g. ["--data-dir", "/scratch/farlab"]), shell-quoted. */
  serveArgs?: string[];
  /** Accept and record the key of a host not in known_hosts (`--trust-new-host`). */
  trustNewHost?: boolean;
  /** The known_hosts file checked and written; default: UserKnownHostsFile, else ~/.ssh/known_hosts. */
  knownHostsFile?: string;
  /** Also checked, never written; default /etc/ssh/ssh_known_hosts. */
  globalKnownHostsFile?: string | null;
  /** ssh_config to read; default ~/.ssh/config; null = none. */
  sshConfigFile?: string | null;
  /** Key files to try, replacing the config's and the defaults. */
  identityFiles?: string[];
  /** ssh-agent socket; default $SSH_AUTH_SOCK; null = do not use an agent. */
  agentSocket?: string | null;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Time allowed for TCP connect + SSH handshake + login, per hop. */
  readyTimeoutMs?: number;
}

/** ssh2's host key algorithms, in its default order; types known for a host go first. */
const HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
] as const;
type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number];

const DEFAULT_IDENTITY_FILES = ["id_ed25519", "id_ecdsa", "id_rsa"];

export async function connectSsh(options: SshConnectOptions): Promise<Transport> {
  const configFile = options.sshConfigFile === undefined ? defaultSshConfigFile() : options.sshConfigFile;
  const target = resolveSshTarget(parseSshUrl(options.url), configFile);
  const hops = [...target.jumps, target];
  const clients: Client[] = [];
  const closeAll = () => {
    for (const client of [...clients].reverse()) client.end();
  };
  try {
    let sock: Duplex | undefined;
    for (const [index, hop] of hops.entries()) {
      const client = await login(hop, options, sock);
      clients.push(client);
      const next = hops[index + 1];
      if (next) sock = await forward(client, hop, next);
    }
    return await startAgent(clients[clients.length - 1], target, options, closeAll);
  } catch (error) {
    closeAll();
    throw error;
  }
}

/** `user@host:port` for messages. */
function label(target: SshTarget): string {
  const where = `${target.user}@${knownHostName(target.host, target.port)}`;
  return target.alias !== target.host ? `${where} ('${target.alias}')` : where;
}

function knownHostsFiles(target: SshTarget, options: SshConnectOptions): { writable: string; all: string[] } {
  const writable = options.knownHostsFile ?? target.knownHostsFiles[0] ?? path.join(os.homedir(), ".ssh", "known_hosts");
  const global = options.globalKnownHostsFile === undefined ? "/etc/ssh/ssh_known_hosts" : options.globalKnownHostsFile;
  const all = [writable, ...(options.knownHostsFile ? [] : target.knownHostsFiles.slice(1)), ...(global ? [global] : [])];
  return { writable, all };
}

/** Opens one SSH connection (over `sock` when it is a hop behind a jump host) and logs in. */
function login(target: SshTarget, options: SshConnectOptions, sock?: Duplex): Promise<Client> {
  const files = knownHostsFiles(target, options);
  const auth = authMethods(target, options);
  return new Promise((resolve, reject) => {
    const client = new Client();
    let refusal: Error | undefined;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(refusal ?? error);
    };
    client.once("ready", () => {
      settled = true;
      // No Nagle: the agent protocol is request/reply, and a small frame (a transfer_read request,
      // an acknowledgement, a window adjust) held back until the peer's delayed ACK stalls the
      // whole pipeline; downloads ran about 1.5x faster with it off (docs/volumes.md).
      client.setNoDelay(true);
      resolve(client);
    });
    client.once("close", () => fail(new SshError(`${label(target)} closed the connection before login completed`)));
    // Always listening: ssh2 may report more than one error, and an unheard one would crash the
    // kernel. After login, the agent channel's transport reports what ended the link.
    client.on("error", (error: Error & { level?: string }) => {
      if (settled) return;
      if (error.level === "client-authentication") {
        fail(
          new SshError(
            `${label(target)} refused every login method tried (${auth.tried.join(", ") || "none"}): ` +
              `is one of these keys in ~/.ssh/authorized_keys of ${target.user} there?${auth.skipped.length ? ` Skipped: ${auth.skipped.join("; ")}.` : ""}`,
          ),
        );
      } else {
        fail(new SshError(`cannot connect to ${label(target)}: ${error.message}`));
      }
    });
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      sock: sock as ConnectConfig["sock"],
      authHandler: auth.methods,
      keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: options.keepaliveCountMax ?? 3,
      readyTimeout: options.readyTimeoutMs ?? 20_000,
      algorithms: { serverHostKey: hostKeyAlgorithmsFor(recordedKeyTypes(files.all, target.host, target.port)) },
      hostVerifier: (key: Buffer) => {
        try {
          refusal = verifyHostKey(target, key, files, options.trustNewHost === true);
        } catch (error) {
          // An unreadable known_hosts (or an unwritable one with trustNewHost) refuses the host.
          refusal = new HostKeyError(`cannot check the host key of ${label(target)}: ${(error as Error).message}`);
        }
        return refusal === undefined;
      },
    };
    if (auth.methods.length === 0) {
      reject(new SshError(`no way to log in to ${label(target)}: no ssh-agent (SSH_AUTH_SOCK) and no usable key file (${auth.skipped.join("; ") || "none configured"})`));
      return;
    }
    client.connect(config);
  });
}

/** undefined = accept; else the error that refuses the host. */
function verifyHostKey(target: SshTarget, key: Buffer, files: { writable: string; all: string[] }, trustNewHost: boolean): Error | undefined {
  const name = knownHostName(target.host, target.port);
  const what = `${keyTypeOf(key)} key ${fingerprint(key)}`;
  const verdict = checkHostKey(files.all, target.host, target.port, key);
  switch (verdict.kind) {
    case "known":
      return undefined;
    case "unknown":
      if (trustNewHost) {
        recordHostKey(files.writable, target.host, target.port, key, target.hashKnownHosts);
        return undefined;
      }
      return new HostKeyError(
        `the host key of ${name} is not known (${what}; looked in ${files.all.join(", ")}). ` +
          "If that fingerprint is right (ask the host's admin, or run `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` there), " +
          "connect once with --trust-new-host (trustNewHost) to record it, or add it to known_hosts with ssh-keyscan.",
      );
    case "revoked":
      return new HostKeyError(`the host key of ${name} (${what}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}: refusing to connect.`);
    case "changed": {
      const where = verdict.recorded.map((e) => `${e.file}:${e.line} (${e.keyType})`).join(", ");
      return new HostKeyError(
        `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}! It presented the ${what}, which is not the key recorded in ${where}. ` +
          "Someone could be eavesdropping on you (a man-in-the-middle attack), or the host key was really changed. " +
          `Connection refused, also with --trust-new-host. If you know the key changed, remove the old entry (\`ssh-keygen -R '${name}' -f ${verdict.recorded[0].file}\`) and connect again.`,
      );
    }
  }
}

/** Known key types' algorithms first (ssh-rsa keys sign with rsa-sha2-*), then the rest. */
function hostKeyAlgorithmsFor(knownTypes: string[]): HostKeyAlgorithm[] {
  const preferred = knownTypes.flatMap((type): HostKeyAlgorithm[] =>
    type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : HOST_KEY_ALGORITHMS.filter((a) => a === type),
  );
  return [...new Set([...preferred, ...HOST_KEY_ALGORITHMS])];
}

interface AuthPlan {
  methods: AnyAuthMethod[];
  tried: string[];
  skipped: string[];
}

function authMethods(target: SshTarget, options: SshConnectOptions): AuthPlan {
  const plan: AuthPlan = { methods: [], tried: [], skipped: [] };
  const agent = options.agentSocket === undefined ? process.env.SSH_AUTH_SOCK : options.agentSocket;
  if (agent) {
    plan.methods.push({ type: "agent", username: target.user, agent });
    plan.tried.push(`ssh-agent at ${agent}`);
  }
  const explicit = options.identityFiles ?? (target.identityFiles.length > 0 ? target.identityFiles : undefined);
  const files = explicit ?? DEFAULT_IDENTITY_FILES.map((name) => path.join(os.homedir(), ".ssh", name));
  for (const file of files) {
    let text: Buffer;
    try {
      text = fs.readFileSync(file);
    } catch {
      if (explicit) plan.skipped.push(`${file}: cannot be read`);
      continue;
    }
    const parsed = utils.parseKey(text);
    if (parsed instanceof Error) {
      plan.skipped.push(`${file}: ${/passphrase|encrypted/i.test(parsed.message) ? "needs a passphrase (add it to ssh-agent instead)" : parsed.message}`);
      continue;
    }
    plan.methods.push({ type: "publickey", username: target.user, key: text });
    plan.tried.push(`key ${file}`);
  }
  return plan;
}

/** A TCP stream to `next` through `client` (ssh -J). */
function forward(client: Client, via: SshTarget, next: SshTarget): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut("127.0.0.1", 0, next.host, next.port, (error, channel) => {
      if (error) reject(new SshError(`jump host ${label(via)} could not reach ${knownHostName(next.host, next.port)}: ${error.message}`));
      else resolve(channel);
    });
  });
}

/** Runs the agent over an exec channel and wraps it as a Transport. */
function startAgent(client: Client, target: SshTarget, options: SshConnectOptions, closeAll: () => void): Promise<Transport> {
  const command = [options.command ?? "farlab-agent", "serve", "--stdio", ...(options.serveArgs ?? []).map(shellQuote)].join(" ");
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel: ClientChannel) => {
      if (error) {
        reject(new SshError(`${label(target)} would not run \`${command}\`: ${error.message}`));
        return;
      }
      resolve(channelTransport(client, channel, target, command, closeAll));
    });
  });
}

function channelTransport(client: Client, channel: ClientChannel, target: SshTarget, command: string, closeAll: () => void): Transport {
  // The agent logs to stderr: always read it (an unread stderr would fill the channel window and
  // stall the agent), and keep the end of it to explain an early exit.
  let stderrTail = "";
  channel.stderr.on("data", (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString("utf8")).slice(-4000);
  });
  let exit: { code: number | null; signal?: string } | undefined;
  channel.on("exit", (code: number | null, signal?: string) => (exit = { code, signal }));
  let linkError: Error | undefined;
  client.on("error", (error: Error) => (linkError = error));
  const closed = new Promise<void>((resolve) => channel.once("close", () => resolve()));
  const stream = new StreamTransport(channel, channel);
  let closing = false;
  return {
    send: (header, payload) => stream.send(header, payload),
    frames: {
      async *[Symbol.asyncIterator]() {
        yield* stream.frames;
        await closed;
        closeAll();
        if (closing) return;
        if (linkError) throw new SshError(`the SSH connection to ${label(target)} dropped: ${linkError.message}`);
        if (exit && (exit.code !== 0 || exit.signal)) {
          const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
          const hint = exit.code === 127 ? " (is it installed and on PATH for non-interactive logins? set command= to its full path)" : "";
          const output = stderrTail.trim() ? `: ${stderrTail.trim().split("\n").slice(-5).join(" | ")}` : "";
          throw new SshError(`\`${command}\` on ${label(target)} ${how}${hint}${output}`);
        }
      },
    },
    close: () => {
      closing = true;
      stream.close();
      closeAll();
    },
  };
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
