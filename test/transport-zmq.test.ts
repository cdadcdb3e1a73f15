/**
 * The ZeroMQ transport end to end: a real `farlab-agent serve --listen` on a loopback port, real
 * DEALER clients with CURVE keys, the agent's ZAP handler deciding from its authorized_keys.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { curveKeyPair } from "zeromq";
import { AgentClient } from "../extension/remote/agent-client";
import { clientKeyPair } from "../extension/transports/client-keys";
import { AgentAuthError, TransportError } from "../extension/transports/errors";
import { connectZmq } from "../extension/transports/zmq";
import type { Transport } from "../remote-agent/protocol/framing";
import { FromAgent, type JobEvent } from "../remote-agent/protocol/messages";
import { ListeningAgent } from "./helpers/listening-agent";
import { freePort } from "./helpers/ports";
import { waitFor } from "./helpers/wait";

let agent: ListeningAgent;
const configDirs: string[] = [];

/** A client identity of its own: a fresh config dir, its keypair made there on first use. */
function newClientKeys() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-client-"));
  configDirs.push(dir);
  return clientKeyPair(dir);
}

before(async () => {
  agent = await ListeningAgent.start();
});

after(async () => {
  await agent.stop();
});

test("the client keypair is made once, the secret key 0600", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-client-"));
  const first = clientKeyPair(dir);
  assert.deepEqual(clientKeyPair(dir), first);
  assert.equal(fs.statSync(path.join(dir, "client.key")).mode & 0o777, 0o600);
  assert.equal(first.publicKey.length, 40);
});

test("farlab-agent authorize takes keys that start with '-'", () => {
  const key = `-${curveKeyPair().publicKey.slice(1)}`; // still Z85: '-' is digit 63
  assert.match(agent.authorize(key, "dash"), /^authorized -/);
});

test("farlab-agent authorize rejects a malformed key with a clear error", () => {
  assert.throws(() => agent.authorize("not-a-key"), /a CURVE key is 40 characters of Z85 text, not 9 characters/);
  assert.throws(() => agent.authorize("~".repeat(40)), /is not Z85 text/);
});

test("an authorized client gets hello and status", async () => {
  const keys = newClientKeys();
  assert.match(agent.authorize(keys.publicKey, "alice"), /authorized .* \(alice\)/);
  const client = new AgentClient(() => connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys }), { name: "zmq" });
  try {
    const status = await client.request({ type: "status" });
    assert.equal(status.of, "status");
    assert.equal(client.agentInfo?.agentId, status.agentId);
    assert.equal(client.agentInfo?.protocol, 1);
  } finally {
    client.close();
  }
  // The agent notices the client went away (ROUTER_NOTIFY) and ends that connection.
  await waitFor(() => /client connection \w+ disconnected \(0 open\)/.test(agent.log()), { what: "the agent to log the disconnect" });
});

test("an unauthorized key gets AgentAuthError saying how to authorize it, then works once authorized", async () => {
  const keys = newClientKeys();
  await assert.rejects(connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys }), (error: Error) => {
    assert.ok(error instanceof AgentAuthError, `expected AgentAuthError, got ${error.name}: ${error.message}`);
    assert.equal(error.name, "AgentAuthError");
    assert.ok(error.message.includes(`refused this client's key ${keys.publicKey}`), error.message);
    assert.ok(error.message.includes(`farlab-agent authorize ${keys.publicKey}`), error.message);
    return true;
  });
  // Through the kernel's AgentClient the request fails (no hang) with the same advice.
  const refused = new AgentClient(() => connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys }), { name: "zmq" });
  await assert.rejects(refused.request({ type: "status" }), new RegExp(`farlab-agent authorize ${escape(keys.publicKey)}`));
  refused.close();
  assert.match(agent.log(), /refused client key/);

  // The agent re-reads authorized_keys: no restart needed.
  agent.authorize(keys.publicKey);
  const transport = await connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys });
  transport.close();
});

test("a wrong server key or a port with no agent fails fast with TransportError", async () => {
  const keys = newClientKeys();
  agent.authorize(keys.publicKey);
  await assert.rejects(connectZmq({ url: agent.url, serverKey: curveKeyPair().publicKey, clientKeys: keys }), (error: Error) => {
    assert.ok(error instanceof TransportError, `${error.name}: ${error.message}`);
    assert.match(error.message, /CURVE handshake .* failed.*farlab-agent keys/);
    return true;
  });
  const url = `tcp://127.0.0.1:${await freePort()}`;
  await assert.rejects(connectZmq({ url, serverKey: agent.serverKey, clientKeys: keys }), /nothing accepted a connection at tcp:\/\/127\.0\.0\.1:\d+/);
  await assert.rejects(connectZmq({ url: "tcp://nowhere", serverKey: agent.serverKey, clientKeys: keys }), /tcp:\/\/HOST:PORT/);
  await assert.rejects(connectZmq({ url: agent.url, serverKey: "short", clientKeys: keys }), /server_key .* 40 characters/);
});

/** Everything one raw connection receives, and a way to wait for a message. */
function collect(transport: Transport) {
  const received: FromAgent[] = [];
  const waiters: Array<{ predicate: (m: FromAgent) => boolean; resolve: (m: FromAgent) => void }> = [];
  void (async () => {
    for await (const incoming of transport.frames) {
      if (incoming.kind !== "frame") throw new Error(`undecodable message: ${incoming.message}`);
      const message = FromAgent.parse(incoming.header);
      received.push(message);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(message)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(message);
        }
      }
    }
  })().catch(() => undefined); // the connection ends with an error when the agent stops
  const waitFor = (predicate: (m: FromAgent) => boolean) =>
    new Promise<FromAgent>((resolve) => {
      const seen = received.find(predicate);
      if (seen) resolve(seen);
      else waiters.push({ predicate, resolve });
    });
  return { received, waitFor };
}

test("two clients at once each see only their own replies and job output", async () => {
  const connect = async (name: string) => {
    const keys = newClientKeys();
    agent.authorize(keys.publicKey, name);
    const transport = await connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys });
    return { name, transport, ...collect(transport) };
  };
  const clients = await Promise.all([connect("one"), connect("two")]);
  try {
    // Both use the same request ids: replies must still go to their own sender.
    for (const c of clients) {
      await c.transport.send({ v: 1, id: "1", type: "hello", client: { id: c.name } });
      await c.transport.send({
        v: 1,
        id: "2",
        type: "run",
        session: { name: `s-${c.name}`, lang: "sh", resources: {} },
        code: `for i in 1 2 3 4 5; do echo ${c.name}-$i; done`,
      });
    }
    const jobIds = await Promise.all(
      clients.map(async (c) => {
        const reply = await c.waitFor((m) => m.type !== "event" && m.re === "2");
        assert.equal(reply.type, "reply", JSON.stringify(reply));
        return reply.type === "reply" && reply.body.of === "run" ? reply.body.jobId : "";
      }),
    );
    assert.notEqual(jobIds[0], jobIds[1]);
    await Promise.all(clients.map((c, i) => c.waitFor((m) => m.type === "event" && m.jobId === jobIds[i] && m.event.kind === "done")));
    clients.forEach((c, i) => {
      const events = c.received.filter((m): m is JobEvent => m.type === "event");
      assert.ok(events.length > 0);
      assert.ok(events.every((e) => e.jobId === jobIds[i]), `${c.name} received another client's events`);
      const stdout = events.map((e) => (e.event.kind === "stream" ? e.event.text : "")).join("");
      assert.equal(stdout, [1, 2, 3, 4, 5].map((n) => `${c.name}-${n}\n`).join(""));
      const hello = c.received.filter((m) => m.type === "reply" && m.re === "1");
      assert.equal(hello.length, 1, `${c.name} got ${hello.length} hello replies`);
    });
  } finally {
    for (const c of clients) c.transport.close();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

test("when the agent goes away, the client's transport ends with an error (so AgentClient reconnects)", async () => {
  const doomed = await ListeningAgent.start();
  const keys = newClientKeys();
  doomed.authorize(keys.publicKey);
  const transport = await connectZmq({ url: doomed.url, serverKey: doomed.serverKey, clientKeys: keys });
  const ended = (async () => {
    for await (const incoming of transport.frames) void incoming;
  })();
  doomed.child.kill("SIGKILL");
  await assert.rejects(ended, (error: Error) => {
    assert.ok(error instanceof TransportError, `${error.name}: ${error.message}`);
    assert.match(error.message, /connection to the agent at tcp:\/\/127\.0\.0\.1:\d+ dropped/);
    return true;
  });
  await assert.rejects(transport.send({ v: 1, id: "x", type: "status" }), /dropped/);
});
