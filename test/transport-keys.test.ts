/** CURVE key text (Z85) and the agent's authorized_keys file. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { curveKeyPair } from "zeromq";
import { AuthorizedKeys, authorizeKey, parseAuthorizedKeys } from "../remote-agent/keys/authorized-keys";
import { curveKeyProblem, z85Decode, z85Encode } from "../remote-agent/keys/z85";

test("Z85 matches the RFC 32 test vector and round-trips zeromq's keys", () => {
  const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
  assert.equal(z85Encode(bytes), "HelloWorld");
  assert.deepEqual(z85Decode("HelloWorld"), bytes);
  const { publicKey } = curveKeyPair();
  assert.equal(z85Encode(z85Decode(publicKey)!), publicKey);
  assert.equal(curveKeyProblem(publicKey), null);
  assert.match(curveKeyProblem(publicKey.slice(1)) ?? "", /40 characters/);
  assert.match(curveKeyProblem("~" + publicKey.slice(1)) ?? "", /not Z85/);
  assert.equal(z85Decode("#####"), null, "a group over 2^32 - 1 is not Z85");
});

test("authorized_keys: names, comments, bad lines reported and skipped", () => {
  const a = curveKeyPair().publicKey;
  const b = curveKeyPair().publicKey;
  const { keys, problems } = parseAuthorizedKeys(`# team\n${a}  alice laptop\n\nnot-a-key\n${b}\n`);
  assert.deepEqual(
    keys.map((k) => [k.key, k.name, k.line]),
    [
      [a, "alice laptop", 2],
      [b, undefined, 5],
    ],
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0], /^line 4: /);
});

test("authorizeKey appends once (0600) and a running lookup sees the change", () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "farlab-authz-")), "authorized_keys");
  const keys = new AuthorizedKeys(file);
  const key = curveKeyPair().publicKey;
  assert.equal(keys.lookup(key), undefined);
  assert.equal(authorizeKey(file, key, "bob"), true);
  assert.equal(authorizeKey(file, key), false);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(keys.lookup(key)?.name, "bob");
  fs.writeFileSync(file, "# everyone removed\n");
  assert.equal(keys.lookup(key), undefined);
  assert.throws(() => authorizeKey(file, "short"), /40 characters of Z85/);
  assert.throws(() => authorizeKey(file, key, "two\nlines"), /single line/);
});
