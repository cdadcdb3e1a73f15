/**
 * The pure parts of %%remote: options -> SessionRef (with %remote config defaults), the checks
 * that stop a bad cell before anything is sent, -i's JSON check, and "\r" collapsing of streams.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MagicUsageError } from "../extension/magics/errors";
import { collapseOverwrites } from "../extension/remote/job-renderer";
import { jsonProblem } from "../extension/remote/remote-magic";
import { RemoteDefaults, planRemoteRun } from "../extension/remote/remote-options";

const none = new RemoteDefaults();

test("options become the session's resources, in MiB and ms", () => {
  const plan = planRemoteRun(
    {
      options: { lang: "python", gpu: "H100|A100", cpu: 2, memory: 16384, timeout: 90_000, volumes: ["data:/mnt/data:ro"], secrets: ["hf"] },
      flags: new Set(["fresh"]),
    },
    none,
  );
  assert.deepEqual(plan.session, {
    name: undefined,
    lang: "python",
    fresh: true,
    resources: {
      gpu: "H100|A100",
      cpu: 2,
      memoryMiB: 16384,
      volumes: [{ name: "data", mountPath: "/mnt/data", readOnly: true }],
      secrets: ["hf"],
    },
  });
  assert.equal(plan.timeoutMs, 90_000);
});

test("without options: TypeScript, no resources, a one-hour timeout", () => {
  const plan = planRemoteRun({ options: {}, flags: new Set() }, none);
  assert.deepEqual(plan.session, { name: undefined, lang: "ts", fresh: false, resources: {} });
  assert.equal(plan.timeoutMs, 3_600_000);
});

test("%remote config defaults apply, and the cell's own options win", () => {
  const defaults = new RemoteDefaults();
  defaults.set({ lang: "python", gpu: "A100" }, new Set());
  const plan = planRemoteRun({ options: { gpu: "any" }, flags: new Set() }, defaults);
  assert.equal(plan.session.lang, "python");
  assert.equal(plan.session.resources.gpu, "any");
  assert.deepEqual(defaults.describe(), ["lang=python", "gpu=A100"]);
  assert.throws(() => defaults.set({ gpu: "A100:0" }, new Set()), MagicUsageError);
  assert.deepEqual(defaults.describe(), ["lang=python", "gpu=A100"], "a rejected config changes nothing");
});

test("what the parser cannot check is a MagicUsageError naming the option", () => {
  const bad: [Record<string, string | number | string[]>, RegExp][] = [
    [{ gpu: "A100:x" }, /gpu=A100:x/],
    [{ gpu: "A100|" }, /gpu=/],
    [{ cpu: 0 }, /cpu=0/],
    [{ volumes: ["data"] }, /volumes=data/],
    [{ volumes: ["Bad Name:/mnt"] }, /volume name/],
    [{ volumes: ["data:mnt"] }, /absolute/],
    [{ secrets: ["no spaces"] }, /secret name/],
    [{ session: "has space" }, /session=/],
  ];
  for (const [options, message] of bad) {
    assert.throws(() => planRemoteRun({ options, flags: new Set() }, none), (e: unknown) => e instanceof MagicUsageError && message.test(e.message));
  }
});

test("-i values must be JSON; the problem names the path inside the variable", () => {
  assert.equal(jsonProblem({ a: [1, "x", null, { b: true }] }, "v"), undefined);
  assert.match(jsonProblem(() => 1, "f")!, /f is a function/);
  assert.match(jsonProblem({ when: new Date(0) }, "cfg")!, /cfg\.when is a Date/);
  assert.match(jsonProblem([1, NaN], "xs")!, /xs\[1\] is NaN/);
  assert.match(jsonProblem(new Map(), "m")!, /m is a Map/);
  assert.match(jsonProblem({ n: 10n }, "o")!, /o\.n is a bigint/);
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.match(jsonProblem(cycle, "c")!, /cycle/);
  const shared = { x: 1 };
  assert.equal(jsonProblem({ a: shared, b: shared }, "dag"), undefined, "a shared object is not a cycle");
});

test('"\\r" overwrites inside a chunk keep only what the line finally shows', () => {
  assert.equal(collapseOverwrites("plain\ntext\n", true), "plain\ntext\n");
  assert.equal(collapseOverwrites("\r 10%\r 20%\r 30%", true), " 30%");
  assert.equal(collapseOverwrites("\r 10%\r 20%", false), "\r 20%", "replaces the line an earlier chunk left open");
  assert.equal(collapseOverwrites(" more\r", false), " more\r", "a line that only goes on is not erased");
  assert.equal(collapseOverwrites("a\rb\nc\rd\n", true), "b\nd\n");
  assert.equal(collapseOverwrites("line\r\nnext\r\n", true), "line\nnext\n", "CRLF is a line end");
});
