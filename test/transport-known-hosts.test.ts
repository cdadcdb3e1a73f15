/**
 * known_hosts matching (extension/transports/known-hosts.ts) on lines as OpenSSH writes them:
 * keys and hashes made by the real ssh-keygen, so the parser is checked against the tool's format.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { checkHostKey, fingerprint, hostMatches, knownHostName, recordedKeyTypes, recordHostKey } from "../extension/transports/known-hosts";
import { keygen, type KeyType } from "./helpers/sshd";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-known-hosts-"));
let n = 0;

/** A fresh key of `type`: its known_hosts fields and its wire blob. */
function newKey(type: KeyType): { fields: string; blob: Buffer } {
  const file = path.join(dir, `key${++n}`);
  keygen(file, type);
  const [keyType, base64] = fs.readFileSync(`${file}.pub`, "utf8").split(/\s+/);
  return { fields: `${keyType} ${base64}`, blob: Buffer.from(base64, "base64") };
}

function write(lines: string[]): string {
  const file = path.join(dir, `known_hosts${++n}`);
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

test("host names: plain on port 22, [host]:port otherwise", () => {
  assert.equal(knownHostName("gpu1", 22), "gpu1");
  assert.equal(knownHostName("gpu1", 2222), "[gpu1]:2222");
});

test("patterns: lists, wildcards, negation, case", () => {
  assert.ok(hostMatches("a,gpu1,b", "gpu1"));
  assert.ok(hostMatches("*.example.org", "GPU1.example.org"));
  assert.ok(hostMatches("gpu?", "gpu7"));
  assert.ok(!hostMatches("gpu?", "gpu17"));
  assert.ok(hostMatches("[gpu*]:2222", "[gpu1]:2222"));
  assert.ok(!hostMatches("gpu1", "[gpu1]:2222"), "a plain entry is for port 22 only");
  assert.ok(!hostMatches("*.example.org,!bad.example.org", "bad.example.org"));
});

test("ed25519, ecdsa and rsa keys: known, changed, unknown; hashed entries from ssh-keygen -H", () => {
  for (const type of ["ed25519", "ecdsa", "rsa"] as const) {
    const key = newKey(type);
    const other = newKey(type);
    const plain = write(["# comment", "", `[gpu1]:2222 ${key.fields} comment`]);
    assert.deepEqual(
      { ...checkHostKey([plain], "gpu1", 2222, key.blob), entry: undefined },
      { kind: "known", entry: undefined },
    );
    const changed = checkHostKey([plain], "gpu1", 2222, other.blob);
    assert.equal(changed.kind, "changed");
    assert.equal(changed.kind === "changed" && changed.recorded[0].line, 3);
    assert.equal(checkHostKey([plain], "gpu2", 2222, key.blob).kind, "unknown");
    assert.equal(checkHostKey([plain], "gpu1", 22, key.blob).kind, "unknown");

    const hashed = write([`gpu1 ${key.fields}`, `[gpu1]:2222 ${key.fields}`]);
    execFileSync("ssh-keygen", ["-H", "-f", hashed], { stdio: "ignore" });
    assert.ok(!fs.readFileSync(hashed, "utf8").includes("gpu1"));
    assert.equal(checkHostKey([hashed], "gpu1", 22, key.blob).kind, "known");
    assert.equal(checkHostKey([hashed], "gpu1", 2222, key.blob).kind, "known");
    assert.equal(checkHostKey([hashed], "gpu1", 2222, other.blob).kind, "changed");
    assert.equal(checkHostKey([hashed], "gpu9", 22, key.blob).kind, "unknown");
  }
});

test("@revoked refuses a key; @cert-authority lines are not host keys; corrupt lines are skipped", () => {
  const key = newKey("ed25519");
  const ca = newKey("ed25519");
  const file = write([`@revoked * ${key.fields}`, `gpu1 ${key.fields}`, `@cert-authority gpu1 ${ca.fields}`, "gpu1 ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIG4B"]);
  assert.equal(checkHostKey([file], "gpu1", 22, key.blob).kind, "revoked");
  assert.equal(checkHostKey([file], "gpu1", 22, ca.blob).kind, "changed");
  assert.deepEqual(recordedKeyTypes([file], "gpu1", 22), ["ssh-ed25519"]);
});

test("several files are read in order; a missing file is empty", () => {
  const key = newKey("ecdsa");
  const second = write([`gpu1 ${key.fields}`]);
  assert.equal(checkHostKey([path.join(dir, "missing"), second], "gpu1", 22, key.blob).kind, "known");
  assert.match(fingerprint(key.blob), /^SHA256:[A-Za-z0-9+/]{43}$/);
});

test("recorded entries, plain and hashed, are found again, also by ssh-keygen -F", () => {
  const key = newKey("ed25519");
  for (const hashed of [false, true]) {
    const file = write(["# existing"]);
    recordHostKey(file, "gpu1", 2222, key.blob, hashed);
    assert.equal(checkHostKey([file], "gpu1", 2222, key.blob).kind, "known");
    assert.equal(fs.readFileSync(file, "utf8").includes("[gpu1]:2222"), !hashed);
    // OpenSSH's own lookup agrees that the entry names this host.
    const found = execFileSync("ssh-keygen", ["-F", "[gpu1]:2222", "-f", file], { encoding: "utf8" });
    assert.ok(found.includes(key.fields.split(" ")[1]), found);
  }
});
