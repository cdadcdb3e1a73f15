/**
 * OpenSSH known_hosts files: reading, matching a host, recording a new one. npm has no
 * maintained known_hosts parser (ssh2 leaves host verification to the caller; sshpk parses keys,
 * not these files), so this small part is written here, after sshd(8) "SSH_KNOWN_HOSTS FILE
 * FORMAT":
 *
 *     [@cert-authority|@revoked] PATTERNS KEYTYPE BASE64KEY [COMMENT]
 *
 * PATTERNS is a comma-separated list of host names or `[host]:port` (for ports other than 22),
 * with `*` and `?` wildcards and `!` negation, or one hashed entry `|1|base64(salt)|base64(hash)`
 * where hash = HMAC-SHA1(key = salt, data = the host as it would be written in plain).
 * A key is compared as its exact wire blob, so ssh-ed25519, ecdsa-sha2-* and ssh-rsa keys all work.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { globRegExp } from "./glob";

export interface KnownHostEntry {
  file: string;
  line: number;
  marker: "cert-authority" | "revoked" | undefined;
  patterns: string;
  keyType: string;
  key: Buffer;
}

/** How a host is named in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === "" || fields[0].startsWith("#")) return;
    let marker: KnownHostEntry["marker"];
    if (fields[0].startsWith("@")) {
      const name = fields.shift()!.slice(1);
      if (name !== "cert-authority" && name !== "revoked") return; // unknown marker: ignore the line, as ssh does
      marker = name;
    }
    const [patterns, keyType, base64] = fields;
    if (!patterns || !keyType || !base64) return;
    const key = Buffer.from(base64, "base64");
    // The blob starts with its own type name: a line whose two disagree is corrupt, skip it.
    if (key.length === 0 || keyTypeOf(key) !== keyType) return;
    entries.push({ file, line: index + 1, marker, patterns, keyType, key });
  });
  return entries;
}

export function readKnownHosts(file: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(fs.readFileSync(file, "utf8"), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** Whether `name` (from knownHostName) matches an entry's PATTERNS field. */
export function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith("|1|")) return hashedMatch(patterns, name);
  let matched = false;
  for (const pattern of patterns.split(",")) {
    const negated = pattern.startsWith("!");
    if (globRegExp(negated ? pattern.slice(1) : pattern, "i").test(name)) {
      if (negated) return false; // a negated match overrides everything else on the line
      matched = true;
    }
  }
  return matched;
}

function hashedMatch(field: string, name: string): boolean {
  const [, , salt, hash] = field.split("|");
  if (!salt || !hash) return false;
  const expected = Buffer.from(hash, "base64");
  const actual = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** The key type named at the start of an SSH wire-format public key blob. */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return "";
  const length = blob.readUInt32BE(0);
  return length > 0 && 4 + length <= blob.length ? blob.subarray(4, 4 + length).toString("latin1") : "";
}

/** OpenSSH's fingerprint form: SHA256:base64 without padding. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

export type HostKeyVerdict =
  | { kind: "known"; entry: KnownHostEntry }
  | { kind: "unknown" }
  /** The host is recorded, but with other keys: `recorded` are its entries. */
  | { kind: "changed"; recorded: KnownHostEntry[] }
  | { kind: "revoked"; entry: KnownHostEntry };

/** Checks the key `host:port` presented against the files, in order. */
export function checkHostKey(files: readonly string[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostName(host, port);
  const entries = files.flatMap(readKnownHosts).filter((e) => e.marker !== "cert-authority" && hostMatches(e.patterns, name));
  const revoked = entries.find((e) => e.marker === "revoked" && e.key.equals(key));
  if (revoked) return { kind: "revoked", entry: revoked };
  const recorded = entries.filter((e) => e.marker === undefined);
  const match = recorded.find((e) => e.key.equals(key));
  if (match) return { kind: "known", entry: match };
  return recorded.length === 0 ? { kind: "unknown" } : { kind: "changed", recorded };
}

/** Key types recorded for the host: the client offers these first, so the server shows one we know. */
export function recordedKeyTypes(files: readonly string[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  const types = files
    .flatMap(readKnownHosts)
    .filter((e) => e.marker === undefined && hostMatches(e.patterns, name))
    .map((e) => e.keyType);
  return [...new Set(types)];
}

/**
 * Appends `host:port key` to `file` (and makes ~/.ssh 0700 if needed), as ssh does on first
 * contact; with `hashed` (HashKnownHosts yes) the name is written as |1|salt|hash.
 */
export function recordHostKey(file: string, host: string, port: number, key: Buffer, hashed = false): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    // a new file
  }
  const separator = text === "" || text.endsWith("\n") ? "" : "\n";
  const name = hashed ? hashedName(knownHostName(host, port)) : knownHostName(host, port);
  fs.appendFileSync(file, `${separator}${name} ${keyTypeOf(key)} ${key.toString("base64")}\n`, { mode: 0o600 });
}

function hashedName(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}
