/**
 * The agent's secret masker (remote-agent/secrets/masker.ts): a value shows as **** however the
 * output is cut into chunks, on each stream independently, and text that cannot start a value is
 * released at once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MASK, SecretMasker } from "../remote-agent/secrets/masker";

const SECRET = "s3cr3t-Value-42";
const TEXT = `before ${SECRET} middle ${SECRET}${SECRET} after s3cr end`;
const EXPECTED = `before ${MASK} middle ${MASK}${MASK} after s3cr end`;

test("a value split at every position across two chunks is masked", () => {
  for (let cut = 0; cut <= TEXT.length; cut++) {
    const masker = new SecretMasker([SECRET, "other-secret"]);
    const shown = masker.push("stdout", TEXT.slice(0, cut)) + masker.push("stdout", TEXT.slice(cut)) + masker.flush("stdout");
    assert.equal(shown, EXPECTED, `cut at ${cut}`);
  }
});

test("a value arriving one character at a time is masked", () => {
  const masker = new SecretMasker([SECRET]);
  let shown = "";
  for (const char of TEXT) shown += masker.push("stdout", char);
  assert.equal(shown + masker.flush("stdout"), EXPECTED);
});

test("only a possible start of a value is held back; streams are independent", () => {
  const masker = new SecretMasker([SECRET]);
  assert.equal(masker.push("stdout", "plain line\n"), "plain line\n");
  assert.equal(masker.push("stdout", "ends with s3c"), "ends with ");
  assert.equal(masker.push("stderr", "r3t-Value-42"), "r3t-Value-42"); // not joined with stdout's tail
  assert.equal(masker.push("stdout", "r3t-Value-42!"), `${MASK}!`);
  assert.equal(masker.push("stdout", "s3"), "");
  assert.equal(masker.flush("stdout"), "s3"); // the cell ended: it was not a value
});

test("values inside structured events are masked; very short values are left alone", () => {
  const masker = new SecretMasker([SECRET, "ab"]);
  assert.deepEqual(masker.mask({ data: { "text/plain": `x=${SECRET}` }, list: [SECRET, 1] }), { data: { "text/plain": `x=${MASK}` }, list: [MASK, 1] });
  assert.equal(masker.push("stdout", "ab abc"), "ab abc");
});
