/**
 * 10,000 random and malformed messages at a real agent, 5,000 over each framing: length-prefixed
 * frames over `serve --stdio`, and CURVE-authenticated ZeroMQ multipart messages to
 * `serve --listen`. Every malformed message must get an error reply (never a crash, never a hang),
 * and afterwards the agent must still serve a normal client: hello, and a cell that runs.
 * The messages come from a seeded generator, so a failure is reproducible (the seed is printed).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { Dealer } from "zeromq";
import { AgentClient } from "../extension/remote/agent-client";
import { connectZmq } from "../extension/transports/zmq";
import { loadOrCreateKeyPair } from "../remote-agent/keys/keypair";
import { FrameDecoder, StreamTransport } from "../remote-agent/protocol/framing";
import { FromAgent, PROTOCOL_VERSION } from "../remote-agent/protocol/messages";
import { AGENT_CLI, ListeningAgent } from "./helpers/listening-agent";

const PER_FRAMING = 5000;
const SEED = Number(process.env.FARLAB_FUZZ_SEED ?? 20261126);

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Requests without side effects, as templates to break. */
const TEMPLATES: Array<Record<string, unknown>> = [
  { type: "hello", client: { id: "fuzz" } },
  { type: "jobs" },
  { type: "status" },
  { type: "sessions" },
  { type: "ack", jobId: "job-x", seq: 3 },
  { type: "attach", jobId: "job-x", fromSeq: 0 },
  { type: "interrupt", jobId: "job-x" },
  { type: "cancel", jobId: "job-x" },
  { type: "session_stop", name: "nope" },
  { type: "run", session: { lang: "python", resources: {} }, code: "1" },
  { type: "map_inputs", jobId: "job-x", items: [] },
  { type: "transfer_read", transferId: "t", seq: 0 },
];

const ODD_VALUES: unknown[] = [null, -1, 1e308, "", "x".repeat(300), [], {}, true, { nested: { deep: [1, 2, { a: null }] } }, "\u0000\ud800", 0.5];

/** One malformed header (as bytes), and whether it is a `run` that might be valid (never). */
function malformedHeader(random: () => number, index: number): Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const kind = Math.floor(random() * 7);
  switch (kind) {
    case 0: {
      // random bytes
      const bytes = Buffer.alloc(Math.floor(random() * 200));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      return bytes;
    }
    case 1:
      // JSON that is not an object
      return Buffer.from(JSON.stringify(pick(ODD_VALUES)));
    case 2:
      // an unknown type
      return Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, id: `f${index}`, type: `nope-${index % 17}` }));
    case 3:
      // a wrong protocol version
      return Buffer.from(JSON.stringify({ ...pick(TEMPLATES), v: pick([0, 2, "1", null]), id: `f${index}` }));
    case 4: {
      // a known type whose fields have the wrong types
      const template: Record<string, unknown> = { ...pick(TEMPLATES), v: PROTOCOL_VERSION, id: `f${index}` };
      const fields = Object.keys(template).filter((k) => k !== "v" && k !== "id" && k !== "type");
      const broken: Record<string, unknown> = { ...template };
      if (fields.length === 0 || template.type === "run") broken.session = "not a session";
      for (const field of fields) broken[field] = pick(ODD_VALUES.filter((v) => typeof v !== typeof template[field]));
      return Buffer.from(JSON.stringify(broken));
    }
    case 5: {
      // truncated JSON of a real request
      const text = JSON.stringify({ ...pick(TEMPLATES), v: PROTOCOL_VERSION, id: `f${index}` });
      return Buffer.from(text.slice(0, Math.max(1, Math.floor(random() * (text.length - 1)))));
    }
    default:
      // a bad id
      return Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, id: pick(["", 7, null, "i".repeat(200)]), type: "jobs" }));
  }
}

/** The agent still serves a normal client after the fuzzing: a shell cell runs and its output comes back. */
async function assertStillServes(client: AgentClient): Promise<void> {
  const stream = await client.run({ session: { lang: "sh", resources: {}, fresh: false }, code: "echo still-serving" });
  let text = "";
  for await (const { event } of stream) if (event.kind === "stream") text += event.text;
  assert.equal(text, "still-serving\n");
  client.close();
}

/** A frame of the stdio framing with a raw header: [u32 header length][u32 payload length][header][payload]. */
function rawFrame(header: Buffer, payload: Buffer): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(header.length, 0);
  prefix.writeUInt32BE(payload.length, 4);
  return Buffer.concat([prefix, header, payload]);
}

test(`stdio framing: ${PER_FRAMING} malformed frames each get an error reply, then a normal client is served (seed ${SEED})`, async () => {
  const random = prng(SEED);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-fuzz-stdio-"));
  const child = spawn(process.execPath, [AGENT_CLI, "serve", "--stdio", "--data-dir", dataDir], { stdio: ["pipe", "pipe", "pipe"] });
  const decoder = new FrameDecoder();
  const received: FromAgent[] = [];
  const problems: string[] = [];
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr = (stderr + text).slice(-4000)));
  let wake: (() => void) | undefined;
  child.stdout.on("data", (chunk: Buffer) => {
    for (const incoming of decoder.push(chunk)) {
      if (incoming.kind !== "frame") problems.push(`the agent sent an undecodable frame: ${incoming.message}`);
      else {
        const parsed = FromAgent.safeParse(incoming.header);
        if (parsed.success) received.push(parsed.data);
        else problems.push(`the agent sent a message outside the protocol: ${JSON.stringify(incoming.header).slice(0, 200)}`);
      }
    }
    wake?.();
  });
  child.once("exit", () => wake?.());
  const until = async (done: () => boolean) => {
    while (!done()) {
      if (child.exitCode !== null || problems.length) assert.fail(`${problems.join("; ") || `the agent exited (${child.exitCode})`}\n${stderr}`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  try {
    for (let i = 0; i < PER_FRAMING; i++) {
      const payload = random() < 0.2 ? Buffer.alloc(Math.floor(random() * 64), i & 0xff) : Buffer.alloc(0);
      if (!child.stdin.write(rawFrame(malformedHeader(random, i), payload))) await new Promise((r) => child.stdin.once("drain", r));
    }
    await until(() => received.length >= PER_FRAMING);
    assert.deepEqual(problems, []);
    assert.equal(received.length, PER_FRAMING, "one answer per frame");
    const errors = received.filter((m) => m.type === "error");
    assert.ok(errors.length >= PER_FRAMING * 0.95, `nearly all are errors (${errors.length}); the rest are answers to accidentally valid requests`);
    assert.ok(
      received.every((m) => m.type !== "event"),
      "no job was started",
    );

    // The same agent, on the same stream, still serves a normal client.
    const client = new AgentClient(async () => new StreamTransport(child.stdout, child.stdin), { name: "after-fuzz", reconnectAttempts: 0 });
    child.stdout.removeAllListeners("data");
    await assertStillServes(client);
  } finally {
    child.stdin.end();
    child.kill("SIGTERM");
  }
});

test(`ZeroMQ multipart: ${PER_FRAMING} malformed messages from an authorized client, then a normal client is served (seed ${SEED + 1})`, async () => {
  const random = prng(SEED + 1);
  const agent = await ListeningAgent.start();
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-fuzz-keys-"));
  const fuzzKeys = loadOrCreateKeyPair(path.join(keyDir, "fuzz"), "client");
  const goodKeys = loadOrCreateKeyPair(path.join(keyDir, "good"), "client");
  agent.authorize(fuzzKeys.publicKey, "fuzzer");
  agent.authorize(goodKeys.publicKey, "good");
  const fuzzer = new Dealer({ curveServerKey: agent.serverKey, curvePublicKey: fuzzKeys.publicKey, curveSecretKey: fuzzKeys.secretKey, linger: 0 });
  fuzzer.connect(agent.url);
  let answers = 0;
  const sentinel = "sentinel-after-fuzz";
  const sentinelAnswered = (async () => {
    for await (const [header] of fuzzer) {
      answers++;
      const message = FromAgent.parse(JSON.parse(header.toString("utf8")));
      if (message.type === "reply" && message.re === sentinel) return message;
    }
    throw new Error("the fuzzing socket closed");
  })();
  try {
    for (let i = 0; i < PER_FRAMING; i++) {
      const frames: Buffer[] = [malformedHeader(random, i)];
      // Sometimes a payload, sometimes too many frames (a malformed multipart message).
      const extra = random() < 0.3 ? Math.ceil(random() * 3) : 0;
      for (let f = 0; f < extra; f++) frames.push(Buffer.alloc(Math.floor(random() * 32), f));
      await fuzzer.send(frames);
    }
    await fuzzer.send([Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, id: sentinel, type: "jobs" }))]);
    const reply = await sentinelAnswered;
    assert.equal(reply.type, "reply");
    // Empty messages are how ROUTER_NOTIFY reports connects, so the agent cannot answer those;
    // everything else gets an answer.
    assert.ok(answers >= PER_FRAMING * 0.95, `answers: ${answers}`);

    const client = new AgentClient(() => connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: goodKeys }), {
      name: "good",
      reconnectAttempts: 0,
    });
    await assertStillServes(client);
  } finally {
    fuzzer.close();
    await agent.stop();
  }
});
