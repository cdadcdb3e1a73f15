/**
 * Volume transfers over the network transports: the same round trip (a 6 MiB file and a folder
 * of small files, byte-identical, sha256 checked) over ZeroMQ with CURVE to a real
 * `farlab-agent serve --listen`, and over SSH (ssh2) to a real sshd on a loopback port that runs
 * `farlab-agent serve --stdio`. (stdio is covered by volume-transfer.test.ts.)
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { AgentClient } from "../extension/remote/agent-client";
import { getPath, putPath } from "../extension/remote/volume-transfer";
import { clientKeyPair } from "../extension/transports/client-keys";
import { connectSsh } from "../extension/transports/ssh";
import { connectZmq } from "../extension/transports/zmq";
import { ListeningAgent } from "./helpers/listening-agent";
import { Sshd } from "./helpers/sshd";

let work: string;
let file: string;
let folder: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-volume-transports-"));
  file = path.join(work, "blob.bin");
  fs.writeFileSync(file, randomBytes(6 * 1024 * 1024 + 123));
  folder = path.join(work, "folder");
  for (let i = 0; i < 120; i++) {
    fs.mkdirSync(path.join(folder, `d${i % 4}`), { recursive: true });
    fs.writeFileSync(path.join(folder, `d${i % 4}`, `f${i}`), randomBytes(i * 13));
  }
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

const digest = (p: string) => createHash("sha256").update(fs.readFileSync(p)).digest("hex");

async function roundTrip(client: AgentClient, label: string): Promise<void> {
  await client.request({ type: "volume_create", name: "net" });
  await putPath(client, "net", file, "blob.bin");
  await putPath(client, "net", folder, "folder");
  const back = path.join(work, `${label}-back`);
  fs.mkdirSync(back);
  await getPath(client, "net", "blob.bin", path.join(back, "blob.bin"));
  await getPath(client, "net", "folder", path.join(back, "folder"));
  assert.equal(digest(path.join(back, "blob.bin")), digest(file));
  for (let i = 0; i < 120; i++) {
    const rel = path.join(`d${i % 4}`, `f${i}`);
    assert.equal(digest(path.join(back, "folder", rel)), digest(path.join(folder, rel)), rel);
  }
}

test("put and get over ZeroMQ (CURVE)", async () => {
  const agent = await ListeningAgent.start();
  const keysDir = fs.mkdtempSync(path.join(work, "keys-"));
  const keys = clientKeyPair(keysDir);
  agent.authorize(keys.publicKey, "volumes");
  const client = new AgentClient(() => connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys }), { name: "zmq" });
  try {
    await roundTrip(client, "zmq");
  } finally {
    client.close();
    await agent.stop();
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});

test("put and get over SSH", async () => {
  const sshd = await Sshd.start();
  const knownHosts = path.join(work, "known_hosts");
  fs.writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n`);
  const client = new AgentClient(
    () =>
      connectSsh(sshd.agentConnectOptions(path.join(work, "ssh-agent"), knownHosts)),
    { name: "ssh", reconnectAttempts: 0 },
  );
  try {
    await roundTrip(client, "ssh");
  } finally {
    client.close();
    await sshd.stop();
  }
});
