/**
 * Where an `ssh://` agent really is: the URL's user, host and port, completed from the user's
 * ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile) as ssh(1)
 * would, parsed with the maintained `ssh-config` package. Values in the URL win over the config,
 * as command-line values do for ssh. `Match exec` blocks are not run: opening a notebook must not
 * execute commands from a config file.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseSshConfig } from "ssh-config";
import { TransportError } from "./errors";
import { globRegExp } from "./glob";

export interface SshTarget {
  /** What the user wrote (an alias or a host name), for messages. */
  alias: string;
  /** The real host name or address (HostName, else the alias). */
  host: string;
  port: number;
  user: string;
  /** IdentityFile entries, expanded; empty = none configured (the caller picks defaults). */
  identityFiles: string[];
  /** Jump hosts to go through, first one first (ProxyJump). */
  jumps: SshTarget[];
  /** UserKnownHostsFile entries, expanded; empty = none configured. */
  knownHostsFiles: string[];
  /** HashKnownHosts: record new hosts hashed. */
  hashKnownHosts: boolean;
}

export interface HostSpec {
  host: string;
  port?: number;
  user?: string;
}

export function defaultSshConfigFile(): string {
  return path.join(os.homedir(), ".ssh", "config");
}

/** Parses `ssh://[user@]host[:port]` (a path or query is refused: there is nothing to put there). */
export function parseSshUrl(url: string): HostSpec {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TransportError(`an SSH agent URL is ssh://[user@]host[:port], not '${url}'`);
  }
  if (parsed.protocol !== "ssh:" || !parsed.hostname || (parsed.pathname !== "" && parsed.pathname !== "/") || parsed.search || parsed.password) {
    throw new TransportError(`an SSH agent URL is ssh://[user@]host[:port] (the host may be a ~/.ssh/config alias), not '${url}'`);
  }
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port ? Number(parsed.port) : undefined,
    user: parsed.username ? decodeURIComponent(parsed.username) : undefined,
  };
}

/** Parses one ProxyJump hop: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
function parseJump(hop: string): HostSpec {
  if (hop.startsWith("ssh://")) return parseSshUrl(hop);
  const match = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hop);
  if (!match) throw new TransportError(`ProxyJump hop '${hop}' is not [user@]host[:port]`);
  return { user: match[1], host: match[2].replace(/^\[(.*)\]$/, "$1"), port: match[3] ? Number(match[3]) : undefined };
}

/**
 * Completes `spec` from the config file (absent file = no config). `configFile: null` skips the
 * config entirely.
 */
export function resolveSshTarget(spec: HostSpec, configFile: string | null = defaultSshConfigFile(), depth = 0): SshTarget {
  const config = readConfig(configFile);
  const computed = config ? config.compute(spec.host, { ignoreCase: true, matchExec: false }) : {};
  const one = (key: string): string | undefined => {
    const value = computed[key];
    return Array.isArray(value) ? value[0] : value;
  };
  const many = (key: string): string[] => {
    const value = computed[key];
    return value === undefined ? [] : Array.isArray(value) ? value : [value];
  };
  const host = one("hostname") ?? spec.host;
  const port = spec.port ?? (one("port") ? Number(one("port")) : 22);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TransportError(`SSH port for '${spec.host}' must be 1-65535, not '${one("port")}'`);
  const user = spec.user ?? one("user") ?? os.userInfo().username;
  const tokens = { host, user, alias: spec.host, port };

  const proxyJump = one("proxyjump");
  let jumps: SshTarget[] = [];
  if (proxyJump && proxyJump.toLowerCase() !== "none") {
    if (depth > 8) throw new TransportError(`ProxyJump for '${spec.host}' loops (more than 8 hops)`);
    jumps = proxyJump.split(",").flatMap((hop) => {
      // A jump host is looked up in the config too; its own ProxyJump hops come before it.
      const target = resolveSshTarget(parseJump(hop.trim()), configFile, depth + 1);
      return [...target.jumps, { ...target, jumps: [] }];
    });
  }
  return {
    alias: spec.host,
    host,
    port,
    user,
    identityFiles: many("identityfile").filter((f) => f.toLowerCase() !== "none").map((f) => expandPath(f, tokens)),
    jumps,
    knownHostsFiles: many("userknownhostsfile").flatMap((value) => value.split(/\s+/)).filter(Boolean).map((f) => expandPath(f, tokens)),
    hashKnownHosts: one("hashknownhosts")?.toLowerCase() === "yes",
  };
}

function readConfig(file: string | null) {
  if (file === null) return null;
  try {
    return parseSshConfig(withIncludes(fs.readFileSync(file, "utf8"), 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new TransportError(`cannot read the SSH config ${file}: ${(error as Error).message}`);
  }
}

/** Replaces `Include PATTERN...` lines by the files they name (relative ones are under ~/.ssh). */
function withIncludes(text: string, depth: number): string {
  return text.replace(/^[ \t]*include[ \t=]+(.+)$/gim, (_, patterns: string) => {
    if (depth >= 16) throw new Error("Include nests more than 16 deep");
    return patterns
      .trim()
      .split(/\s+/)
      .flatMap((pattern) => includedFiles(pattern.replace(/^"(.*)"$/, "$1")))
      .map((included) => withIncludes(fs.readFileSync(included, "utf8"), depth + 1))
      .join("\n");
  });
}

function includedFiles(pattern: string): string[] {
  const absolute = path.resolve(path.join(os.homedir(), ".ssh"), pattern.replace(/^~(?=\/)/, os.homedir()));
  const dir = path.dirname(absolute);
  const name = path.basename(absolute);
  if (!/[*?]/.test(name)) return fs.existsSync(absolute) ? [absolute] : [];
  const regex = globRegExp(name);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries.filter((entry) => regex.test(entry)).sort().map((entry) => path.join(dir, entry));
}

/** ~ and the ssh_config tokens that make sense for file names: %d %u %h %r %n %p %%. */
function expandPath(file: string, tokens: { host: string; user: string; alias: string; port: number }): string {
  const home = os.homedir();
  const expanded = file
    .replace(/^~(?=\/|$)/, home)
    .replace(/%([%duhrnp])/g, (_, token: string) => {
      switch (token) {
        case "%": return "%";
        case "d": return home;
        case "u": return os.userInfo().username;
        case "h": return tokens.host;
        case "r": return tokens.user;
        case "n": return tokens.alias;
        default: return String(tokens.port);
      }
    });
  return path.resolve(home, expanded);
}
