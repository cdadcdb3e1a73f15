/**
 * Which session a `run` goes to:
 * - `session=NAME`: the named session, shared by every client of this agent; its lang and
 *   resources are fixed when it starts, and asking for others under the same name is a `usage`
 *   error that says how to restart it;
 * - `--fresh`: a throwaway session, stopped after its one job;
 * - otherwise the default session of (client, lang, resources): cells that agree on all three
 *   share state.
 * Requests that can never run here (a backend the agent lacks, a GPU spec no inventory could
 * satisfy) are refused before any job exists.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Backend } from "../backends/types";
import type { GpuAllocator } from "../gpu/allocator";
import { GpuSpecError, parseGpuSpec } from "../gpu/spec";
import type { Resources, SessionInfo, SessionRef } from "../protocol/messages";
import { notFound, usageError } from "./errors";
import type { Log } from "./log";
import { Session } from "./session";
import type { SecretStore } from "../secrets/store";
import type { VolumeStore } from "../volumes/store";

export interface SessionManagerOptions {
  backend: Backend;
  gpus: GpuAllocator;
  log: Log;
  interruptGraceMs: number;
  terminateGraceMs: number;
  /** Where `volumes=` and `secrets=` come from (absent: sessions asking for them are refused). */
  volumes?: VolumeStore;
  secrets?: SecretStore;
}

export class SessionManager {
  /** By owner and name (sessionKey): two users may both have a session called "mc". */
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly options: SessionManagerOptions) {}

  /**
   * The session `ref` names for `owner` (the user the asking connection acts for,
   * Connection.owner), made if needed; `client` names its default sessions. Throws
   * AgentError("usage") when it cannot run here.
   */
  resolve(owner: string, client: string, ref: SessionRef): Session {
    this.checkRunnable(ref);
    if (ref.fresh) {
      if (ref.name) throw usageError(`--fresh runs in a throwaway session and cannot be combined with session=${ref.name}`);
      return this.create(`fresh-${randomBytes(4).toString("hex")}`, ref, true, owner);
    }
    const name = ref.name ?? defaultSessionName(client, ref);
    const existing = this.sessions.get(sessionKey(owner, name));
    if (!existing) return this.create(name, ref, false, owner);
    if (ref.name && (existing.lang !== ref.lang || stableJson(existing.resources) !== stableJson(ref.resources))) {
      throw usageError(
        `session '${name}' is running with ${describeSettings(existing.lang, existing.resources)}, and a session's ` +
          `language and resources are fixed when it starts; this cell asks for ${describeSettings(ref.lang, ref.resources)}. ` +
          `End it with \`%remote stop ${name}\` and run the cell again to start it with the new settings ` +
          `(\`%remote restart ${name}\` keeps its settings and clears its state), or choose another session= name.`,
      );
    }
    return existing;
  }

  /** The owner's session `name`. */
  find(name: string, owner: string): Session {
    const session = this.sessions.get(sessionKey(owner, name));
    if (!session) {
      const names = this.list(owner).map((info) => info.name);
      throw notFound(`no session named '${name}'; ${names.length ? `sessions: ${names.join(", ")}` : "there are no sessions"}`);
    }
    return session;
  }

  /** The owner's sessions. */
  list(owner: string): SessionInfo[] {
    return [...this.sessions.values()].filter((session) => session.owner === owner).map((session) => session.info());
  }

  /** A session for a runtime adopted from a dead agent (./agent.ts): as it was, not yet running. */
  adopt(name: string, lang: SessionRef["lang"], resources: Resources, owner: string): Session {
    const existing = this.sessions.get(sessionKey(owner, name));
    if (existing) throw new Error(`session '${name}' of ${owner} exists already`);
    return this.create(name, { lang, resources, fresh: false }, false, owner);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((session) => session.stop()));
  }

  private create(name: string, ref: SessionRef, fresh: boolean, owner: string): Session {
    const key = sessionKey(owner, name);
    const session = new Session({
      name,
      lang: ref.lang,
      resources: ref.resources,
      fresh,
      owner,
      backend: this.options.backend,
      gpus: this.options.gpus,
      log: this.options.log,
      interruptGraceMs: this.options.interruptGraceMs,
      terminateGraceMs: this.options.terminateGraceMs,
      volumes: this.options.volumes,
      secrets: this.options.secrets,
      onStopped: (stopped) => {
        if (this.sessions.get(key) === stopped) this.sessions.delete(key);
        this.options.volumes?.release(stopped.name);
      },
    });
    this.sessions.set(key, session);
    this.options.log(`session ${name}: created (${describeSettings(ref.lang, ref.resources)}${fresh ? ", fresh" : ""})`);
    return session;
  }

  private checkRunnable(ref: SessionRef): void {
    // Missing volumes and secrets are refused before any job exists.
    for (const volume of ref.resources.volumes ?? []) {
      if (!this.options.volumes) throw usageError("this agent has no volume store");
      this.options.volumes.volumeRoot(volume.name);
    }
    if (ref.resources.secrets?.length) {
      if (!this.options.secrets) throw usageError("this agent has no secret store");
      this.options.secrets.check(ref.resources.secrets);
    }
    const backend = this.options.backend.name;
    if (ref.resources.backend && ref.resources.backend !== backend) {
      throw usageError(`backend=${ref.resources.backend} is not available on this agent; it has: ${backend}`);
    }
    if ((ref.resources.apt?.length || ref.resources.pip?.length) && backend !== "docker") {
      throw usageError(`apt= and pip= build a container image: they need the docker backend; this agent has: ${backend}`);
    }
    if (ref.resources.gpu !== undefined) {
      let spec;
      try {
        spec = parseGpuSpec(ref.resources.gpu);
      } catch (e) {
        if (e instanceof GpuSpecError) throw usageError(e.message);
        throw e;
      }
      const never = this.options.gpus.neverSatisfiableReason(spec);
      if (never) throw usageError(never);
    }
  }
}

function sessionKey(owner: string, name: string): string {
  return `${owner}\n${name}`;
}

/** Default names already worked out, by client, lang and resources as sent (every cell asks). */
const defaultNames = new Map<string, string>();
const DEFAULT_NAMES_KEPT = 256;

/** "python-3fa9c1": readable, and distinct per (client, lang, resources). */
function defaultSessionName(client: string, ref: SessionRef): string {
  const asSent = `${client}\n${ref.lang}\n${JSON.stringify(ref.resources)}`;
  let name = defaultNames.get(asSent);
  if (name === undefined) {
    const key = stableJson({ client, lang: ref.lang, resources: ref.resources });
    name = `${ref.lang}-${createHash("sha256").update(key).digest("hex").slice(0, 6)}`;
    if (defaultNames.size >= DEFAULT_NAMES_KEPT) defaultNames.clear();
    defaultNames.set(asSent, name);
  }
  return name;
}

export function describeSettings(lang: string, resources: Resources): string {
  const parts = [`lang=${lang}`];
  if (resources.gpu) parts.push(`gpu=${resources.gpu}`);
  if (resources.cpu) parts.push(`cpu=${resources.cpu}`);
  if (resources.memoryMiB) parts.push(`memory=${resources.memoryMiB}MiB`);
  if (resources.image) parts.push(`image=${resources.image}`);
  if (resources.backend) parts.push(`backend=${resources.backend}`);
  if (resources.volumes?.length) {
    parts.push(`volumes=${resources.volumes.map((v) => `${v.name}:${v.mountPath}${v.readOnly ? ":ro" : ""}`).join(",")}`);
  }
  if (resources.secrets?.length) parts.push(`secrets=${resources.secrets.join(",")}`);
  return parts.join(" ");
}

/** JSON with object keys sorted (and undefined dropped), so equal settings compare equal. */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return value;
}
