/**
 * Isolation between the users of one shared agent (a real `farlab-agent serve --listen`, two
 * clients with their own authorized CURVE keys and user ids): one never sees another's jobs,
 * output or sessions, and cannot attach to, interrupt, cancel or acknowledge another's job or stop
 * another's session; a session name used by both is two sessions. The same user from a second
 * client (a new kernel) does see its jobs; a client claiming another's user without holding that
 * user's key (remote-agent/keys/user-proof.ts) does not.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { AgentClient } from "../extension/remote/agent-client";
import { AgentRequestError } from "../extension/remote/errors";
import { connectZmq } from "../extension/transports/zmq";
import { loadOrCreateKeyPair, type CurveKeyPair } from "../remote-agent/keys/keypair";
import { makeUserProof } from "../remote-agent/keys/user-proof";
import type { SessionRef } from "../remote-agent/protocol/messages";
import { ListeningAgent } from "./helpers/listening-agent";

let agent: ListeningAgent;
let alice: AgentClient;
let bob: AgentClient;
let aliceKeys: CurveKeyPair;
let bobKeys: CurveKeyPair;
let aliceJob: string;
const SESSION: SessionRef = { name: "shared-name", lang: "python", resources: {}, fresh: false };

/** A client as a kernel makes it: its user is its CURVE key, proven to the agent. */
function clientFor(keys: CurveKeyPair, name: string, claim?: { user: string; userProof?: string }): AgentClient {
  const { user, proof } = makeUserProof(keys, agent.serverKey);
  return new AgentClient(() => connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys }), {
    name,
    reconnectAttempts: 0,
    ...(claim ?? { user, userProof: proof }),
  });
}

async function runToEnd(client: AgentClient, code: string, session = SESSION): Promise<{ jobId: string; stdout: string; ename?: string }> {
  const stream = await client.run({ session, code });
  let stdout = "";
  let ename: string | undefined;
  for await (const { event } of stream) {
    if (event.kind === "stream" && event.name === "stdout") stdout += event.text;
    if (event.kind === "error") ename = event.ename;
  }
  return { jobId: stream.jobId, stdout, ename };
}

async function refusedAsNotFound(request: Promise<unknown>): Promise<void> {
  await assert.rejects(request, (error: Error) => {
    assert.ok(error instanceof AgentRequestError, `${error.name}: ${error.message}`);
    assert.equal(error.code, "not_found");
    return true;
  });
}

before(async () => {
  agent = await ListeningAgent.start();
  const keys = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-isolation-keys-"));
  aliceKeys = loadOrCreateKeyPair(path.join(keys, "alice"), "client");
  bobKeys = loadOrCreateKeyPair(path.join(keys, "bob"), "client");
  agent.authorize(aliceKeys.publicKey, "alice");
  agent.authorize(bobKeys.publicKey, "bob");
  alice = clientFor(aliceKeys, "alice");
  bob = clientFor(bobKeys, "bob");
  const run = await runToEnd(alice, 'secret = "alice-only"\nprint("output of alice")');
  assert.equal(run.stdout, "output of alice\n");
  aliceJob = run.jobId;
});

after(async () => {
  alice?.close();
  bob?.close();
  await agent?.stop();
});

test("another user's jobs are not listed, and their output cannot be attached to", async () => {
  const bobJobs = await bob.request({ type: "jobs" });
  assert.deepEqual(bobJobs.jobs, []);
  await refusedAsNotFound(bob.attach(aliceJob, 0));
  const status = await bob.request({ type: "status" });
  assert.deepEqual(status.jobs, []);
  assert.deepEqual(status.sessions, []);
});

test("another user's job cannot be interrupted, cancelled or acknowledged", async () => {
  await refusedAsNotFound(bob.request({ type: "interrupt", jobId: aliceJob }));
  await refusedAsNotFound(bob.request({ type: "cancel", jobId: aliceJob }));
  await refusedAsNotFound(bob.request({ type: "ack", jobId: aliceJob, seq: 1 }));
});

test("the same session name is two sessions: no state, listing or stop crosses users", async () => {
  assert.deepEqual((await bob.request({ type: "sessions" })).sessions, []);
  await refusedAsNotFound(bob.request({ type: "session_stop", name: "shared-name" }));
  await refusedAsNotFound(bob.request({ type: "session_restart", name: "shared-name" }));
  const bobRun = await runToEnd(bob, "print(secret)");
  assert.equal(bobRun.ename, "NameError", "bob's session does not have alice's variable");
  const aliceRun = await runToEnd(alice, "print(secret)");
  assert.equal(aliceRun.stdout, "alice-only\n", "alice's session kept its state");
  const bobSessions = (await bob.request({ type: "sessions" })).sessions;
  assert.deepEqual(bobSessions.map((s) => s.name), ["shared-name"]);
  assert.equal(bobSessions[0].cells, 1, "bob's own session, with bob's one cell");
});

test("the same user from a new client (a new kernel) lists and replays its jobs", async () => {
  const aliceAgain = clientFor(aliceKeys, "alice");
  try {
    const jobs = await aliceAgain.request({ type: "jobs" });
    assert.ok(jobs.jobs.some((j) => j.jobId === aliceJob), JSON.stringify(jobs.jobs));
    const stream = await aliceAgain.attach(aliceJob, 0);
    let stdout = "";
    for await (const { event } of stream) if (event.kind === "stream") stdout += event.text;
    assert.equal(stdout, "output of alice\n");
  } finally {
    aliceAgain.close();
  }
});

test("claiming another user's identity without their key shows nothing of theirs", async () => {
  const alicesClaim = makeUserProof(aliceKeys, agent.serverKey);
  for (const claim of [{ user: alicesClaim.user }, { user: alicesClaim.user, userProof: makeUserProof(bobKeys, agent.serverKey).proof }]) {
    const impostor = clientFor(bobKeys, "impostor", claim);
    try {
      assert.deepEqual((await impostor.request({ type: "jobs" })).jobs, []);
      await refusedAsNotFound(impostor.attach(aliceJob, 0));
      assert.deepEqual((await impostor.request({ type: "sessions" })).sessions, []);
    } finally {
      impostor.close();
    }
  }
});

test("a client reusing another user's client id gets its own default session, not theirs", async () => {
  // The default (unnamed) session is per client id; an id is not a secret (a peer may learn or
  // guess it), so it must only ever select among the asking user's own sessions.
  const DEFAULT: SessionRef = { lang: "python", resources: {}, fresh: false };
  const run = (client: AgentClient, code: string) => runToEnd(client, code, DEFAULT);
  assert.equal((await run(alice, 'default_secret = "alice-default"\nprint("set")')).stdout, "set\n");
  const impostor = clientFor(bobKeys, "same-client-id");
  // As a client that sends alice's client id in its hello (AgentClient picks a random one).
  Object.defineProperty(impostor, "clientId", { value: alice.clientId });
  try {
    assert.equal((await run(impostor, "print(default_secret)")).ename, "NameError", "bob's default session is not alice's");
    assert.equal((await run(alice, "print(default_secret)")).stdout, "alice-default\n", "alice's default session kept its state");
    const seen = (await impostor.request({ type: "sessions" })).sessions;
    assert.ok(seen.every((s) => s.cells === 1), `bob sees only his own one-cell session: ${JSON.stringify(seen)}`);
  } finally {
    impostor.close();
  }
});
