/**
 * AgentRegistry's resolution of `agent=` and agents.json (extension/remote/agents.ts,
 * agent-config.ts), without connecting: names from the file, URLs, the default, and clear errors
 * for unknown names and malformed files.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { AgentConfigError, readAgentsFile, updateAgentsFile } from "../extension/remote/agent-config";
import { AgentRegistry, LOCAL_AGENT } from "../extension/remote/agents";
import { MagicUsageError } from "../extension/magics/errors";

const KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

function configFile(content?: unknown): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "farlab-agents-json-")), "agents.json");
  if (content !== undefined) fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

test("without agents.json the default is the embedded agent", () => {
  const registry = new AgentRegistry({ configFile: configFile() });
  assert.equal(registry.resolve(undefined), LOCAL_AGENT);
  assert.deepEqual(registry.names(), [LOCAL_AGENT]);
});

test("names and the default come from agents.json; URLs resolve as themselves", () => {
  const file = configFile({ default: "gpu1", agents: { gpu1: { url: "tcp://gpu1:7447", server_key: KEY }, lab: { url: "ssh://me@lab" } } });
  const registry = new AgentRegistry({ configFile: file });
  assert.equal(registry.resolve(undefined), "gpu1");
  assert.equal(registry.resolve("lab"), "lab");
  assert.equal(registry.resolve("ssh://me@other:2222"), "ssh://me@other:2222");
  assert.deepEqual(registry.names().sort(), ["gpu1", "lab", "local", "ssh://me@other:2222"].sort());
  assert.equal(registry.describe("gpu1"), "tcp://gpu1:7447");
  assert.ok(registry.isDefault("gpu1"));
});

test("an unknown name, a bad URL and a tcp:// URL without its key are usage errors", () => {
  const registry = new AgentRegistry({ configFile: configFile() });
  assert.throws(() => registry.resolve("gpu9"), (e: Error) => e instanceof MagicUsageError && /unknown agent 'gpu9'.*%remote connect/.test(e.message));
  assert.throws(() => registry.resolve("tcp://host:7447"), (e: Error) => e instanceof MagicUsageError && /server_key/.test(e.message));
});

test("a malformed agents.json is an AgentConfigError naming the file and the problem", () => {
  for (const content of ["{ not json", { agents: { gpu: { url: "http://x" } } }, { default: "nope", agents: {} }, { agents: {}, extra: 1 }]) {
    const file = configFile(content);
    assert.throws(() => readAgentsFile(file), (e: Error) => e instanceof AgentConfigError && e.message.includes(file));
    assert.throws(() => new AgentRegistry({ configFile: file }).resolve(undefined), AgentConfigError);
  }
});

test("updates keep the file valid and private", () => {
  const file = configFile();
  updateAgentsFile((config) => {
    config.agents.gpu1 = { url: "tcp://gpu1:7447", server_key: KEY };
    config.default = "gpu1";
  }, file);
  assert.deepEqual(readAgentsFile(file), { default: "gpu1", agents: { gpu1: { url: "tcp://gpu1:7447", server_key: KEY } } });
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});
