/**
 * Secrets: named sets of KEY=value pairs a session gets as environment variables
 * (`%%remote secrets=NAME`). Each is DATA/secrets/NAME.json, mode 0600, in a folder of mode 0700,
 * written atomically (a temporary file of mode 0600, then a rename). Values leave this module only
 * as a session's environment and as the masker's list (./masker.ts); they are never logged:
 * log lines name secrets and keys only.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { notFound, usageError } from "../agent/errors";
import type { Log } from "../agent/log";
import type { SecretInfo } from "../protocol/messages";

export const SECRET_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const SECRET_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

interface SecretFile {
  values: Record<string, string>;
  updatedAt: number;
}

export class SecretStore {
  readonly dir: string;

  constructor(
    dataDir: string,
    private readonly log: Log,
  ) {
    this.dir = path.join(dataDir, "secrets");
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(this.dir, 0o700);
    // Temporaries of a write that was cut short.
    for (const name of fs.readdirSync(this.dir)) if (name.startsWith(".tmp-")) fs.rmSync(path.join(this.dir, name), { force: true });
  }

  set(name: string, values: Record<string, string>): string[] {
    checkName(name);
    const keys = Object.keys(values);
    if (keys.length === 0) throw usageError(`secret '${name}' needs at least one KEY`);
    for (const key of keys) {
      if (!SECRET_KEY.test(key)) throw usageError(`'${key}' is not an environment variable name; accepted: ${SECRET_KEY.source}`);
    }
    const file = this.file(name);
    const temp = path.join(this.dir, `.tmp-${randomBytes(6).toString("hex")}`);
    const body: SecretFile = { values, updatedAt: Date.now() };
    const fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(body));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    this.log(`secret ${name}: set (keys ${keys.join(", ")})`);
    return keys;
  }

  list(): SecretInfo[] {
    return this.names().map((name) => {
      const secret = this.read(name);
      return { name, keys: Object.keys(secret.values), updatedAt: secret.updatedAt };
    });
  }

  delete(name: string): void {
    checkName(name);
    if (!fs.existsSync(this.file(name))) throw this.missing(name);
    fs.rmSync(this.file(name));
    this.log(`secret ${name}: deleted`);
  }

  /** The environment for `secrets=` names; later names win on a shared key. Throws on a missing one. */
  environment(names: readonly string[]): Record<string, string> {
    const env: Record<string, string> = {};
    for (const name of names) Object.assign(env, this.read(name).values);
    return env;
  }

  /** Throws not_found unless every name exists (checked before a session starts). */
  check(names: readonly string[]): void {
    for (const name of names) this.read(name);
  }

  private read(name: string): SecretFile {
    checkName(name);
    let text: string;
    try {
      text = fs.readFileSync(this.file(name), "utf8");
    } catch {
      throw this.missing(name);
    }
    return JSON.parse(text) as SecretFile;
  }

  private names(): string[] {
    return fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith(".json") && !f.startsWith("."))
      .map((f) => f.slice(0, -".json".length))
      .sort();
  }

  private missing(name: string): Error {
    const names = this.names();
    return notFound(`no secret named '${name}'; ${names.length ? `secrets: ${names.join(", ")}` : "there are no secrets"}; set it with \`%secret set ${name} KEY\``);
  }

  private file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name)) throw usageError(`'${name}' is not a secret name; accepted: ${SECRET_NAME.source}`);
}
