/**
 * The agent protocol at the edge: framing (units) and a real `farlab-agent serve --stdio` child
 * that answers hello/status, answers every kind of malformed input with an error reply, and
 * still serves normal requests afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { FrameDecoder, encodeFrame, type Incoming } from "../remote-agent/protocol/framing";
import { MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, type ErrorReply } from "../remote-agent/protocol/messages";
import { AgentHarness } from "./agent-harness";

function prefix(headerLength: number, payloadLength: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt32BE(headerLength, 0);
  bytes.writeUInt32BE(payloadLength, 4);
  return bytes;
}

test("decoder: frames split at every byte, and many frames in one chunk", () => {
  const frames = [
    encodeFrame({ type: "a", n: 1 }),
    encodeFrame({ type: "b", text: "héllo ✓" }, Buffer.from([0, 1, 2, 255])),
    encodeFrame({ type: "c" }),
  ];
  const stream = Buffer.concat(frames);

  const byteByByte = new FrameDecoder();
  const out: Incoming[] = [];
  for (const byte of stream) out.push(...byteByByte.push(Buffer.from([byte])));
  const oneChunk = new FrameDecoder().push(stream);

  for (const decoded of [out, oneChunk]) {
    assert.deepEqual(
      decoded.map((d) => (d.kind === "frame" ? d.header : d)),
      [{ type: "a", n: 1 }, { type: "b", text: "héllo ✓" }, { type: "c" }],
    );
    const second = decoded[1];
    assert.ok(second.kind === "frame" && second.payload);
    assert.deepEqual([...second.payload], [0, 1, 2, 255]);
  }
});

test("decoder: large frames assembled from pieces of any size, between and around small ones", () => {
  const big = (seed: number, length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));
  const payloads = [big(1, 300_000), Buffer.from([9]), big(2, 65_536), big(3, 1_048_576)];
  const stream = Buffer.concat(payloads.map((payload, seq) => encodeFrame({ type: "chunk", seq }, payload)));
  // Piece sizes that split prefixes, headers and payloads everywhere, and join frames.
  for (const size of [1_000, 32_768, 65_536 + 7, 400_000, stream.length]) {
    const decoder = new FrameDecoder();
    const out: Incoming[] = [];
    for (let at = 0; at < stream.length; at += size) out.push(...decoder.push(stream.subarray(at, at + size)));
    assert.deepEqual(
      out.map((d) => (d.kind === "frame" ? d.header : d)),
      payloads.map((_, seq) => ({ type: "chunk", seq })),
      `pieces of ${size}`,
    );
    out.forEach((d, seq) => assert.ok(d.kind === "frame" && d.payload?.equals(payloads[seq]), `frame ${seq}, pieces of ${size}`));
  }
});

test("decoder: bad frames become errors and decoding goes on", () => {
  const decoder = new FrameDecoder(1024, 16);
  const badJson = Buffer.from("{not json");
  const badUtf8 = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
  const bigPayloadHeader = Buffer.from(JSON.stringify({ id: "big" }));
  const items = decoder.push(
    Buffer.concat([
      prefix(badJson.length, 0),
      badJson,
      prefix(badUtf8.length, 0),
      badUtf8,
      prefix(bigPayloadHeader.length, 20),
      bigPayloadHeader,
      Buffer.alloc(20, 7),
      encodeFrame({ ok: 1 }),
      Buffer.from("GARBAGE GARBAGE GARBAGE"), // header length 0x47415242: far over 1024
      encodeFrame({ ok: 2 }),
    ]),
  );
  assert.deepEqual(
    items.map((i) => (i.kind === "frame" ? i.header : { code: i.code, re: i.re })),
    [
      { code: "bad_frame", re: null },
      { code: "bad_frame", re: null },
      { code: "too_large", re: "big" },
      { ok: 1 },
      { code: "too_large", re: null },
      { ok: 2 },
    ],
  );
  const [json, utf8] = items as Array<Extract<Incoming, { kind: "error" }>>;
  assert.match(json.message, /not valid JSON/);
  assert.match(utf8.message, /not valid UTF-8/);
});

test("agent over stdio: hello, status, and a log that stays off stdout", async () => {
  const agent = AgentHarness.start();
  try {
    const hello = await agent.ok<{ of: string; protocol: number; backend: string; agentId: string; agentVersion: string }>({
      type: "hello",
      client: { id: "test-client", name: "agent-protocol.test" },
    });
    assert.equal(hello.of, "hello");
    assert.equal(hello.protocol, PROTOCOL_VERSION);
    assert.equal(hello.backend, "process");
    assert.match(hello.agentVersion, /^\d+\.\d+\.\d+/);
    assert.ok(hello.agentId.length > 0);

    const status = await agent.ok<{ of: string; agentId: string; gpus: unknown[]; sessions: unknown[]; jobs: unknown[] }>({ type: "status" });
    assert.equal(status.of, "status");
    assert.equal(status.agentId, hello.agentId);
    assert.ok(Array.isArray(status.gpus) && Array.isArray(status.sessions) && Array.isArray(status.jobs));

    // The agent id is kept in the data dir; the log is written there too.
    assert.equal(fs.readFileSync(path.join(agent.dataDir, "agent-id"), "utf8").trim(), hello.agentId);
    assert.match(fs.readFileSync(path.join(agent.dataDir, "agent.log"), "utf8"), /serving stdio/);
  } finally {
    assert.equal(await agent.close(), 0, "the agent exits cleanly when its client closes stdin");
  }
});

test("agent over stdio: every malformed input gets an error reply, then normal service", async () => {
  const agent = AgentHarness.start();
  let errorsSeen = 0;
  /** Sends `bytes`, expects one error reply with `code` (and `re`), then a served status request. */
  const expectError = async (what: string, bytes: Buffer, code: ErrorReply["code"], re: string | null, message?: RegExp) => {
    const before = agent.received.filter((m) => m.type === "error").length;
    assert.equal(before, errorsSeen, `no stray error before: ${what}`);
    agent.writeRaw(bytes);
    const error = (await agent.waitFor((m) => m.type === "error" && agent.received.filter((x) => x.type === "error").indexOf(m) === errorsSeen)) as ErrorReply;
    errorsSeen++;
    assert.equal(error.code, code, `${what}: ${error.message}`);
    assert.equal(error.re, re, what);
    if (message) assert.match(error.message, message, what);
    const status = await agent.request({ type: "status" });
    assert.equal(status.type, "reply", `${what}: the agent still serves requests`);
  };
  const frame = (header: unknown) => {
    const bytes = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
    return Buffer.concat([prefix(bytes.length, 0), bytes]);
  };
  try {
    await expectError("garbage bytes", Buffer.from("GET / HTTP/1.1\r\nHost: example\r\n\r\n"), "too_large", null, /skipping to the next frame/);
    await expectError("invalid JSON", frame("{\"v\":1,\"id\":"), "bad_frame", null, /not valid JSON/);
    await expectError("invalid UTF-8", Buffer.concat([prefix(3, 0), Buffer.from([0x7b, 0xc3, 0x28])]), "bad_frame", null, /UTF-8/);
    await expectError("a header that is not an object", frame([1, 2, 3]), "bad_frame", null, /JSON object/);
    await expectError("unknown type", frame({ v: 1, id: "u1", type: "launch_missiles" }), "unknown_type", "u1", /accepted: .*\bhello, run, interrupt, cancel, attach\b/);
    await expectError("unsupported version", frame({ v: 99, id: "v1", type: "status" }), "unsupported_version", "v1", /version 1/);
    await expectError("schema-invalid run (no code)", frame({ v: 1, id: "s1", type: "run", session: { lang: "sh", resources: {} } }), "bad_frame", "s1", /code/);
    await expectError("schema-invalid run (bad lang)", frame({ v: 1, id: "s2", type: "run", code: "x", session: { lang: "cobol", resources: {} } }), "bad_frame", "s2", /lang/);
    await expectError("unknown job", frame({ v: 1, id: "j1", type: "attach", jobId: "job-nope" }), "not_found", "j1", /no job/);
    await expectError("unknown session", frame({ v: 1, id: "n1", type: "session_stop", name: "nope" }), "not_found", "n1", /no session named 'nope'/);

    // An honest frame whose payload is over the limit: its bytes are skipped, the reply names it.
    const header = Buffer.from(JSON.stringify({ v: 1, id: "big1", type: "status" }));
    await expectError(
      "oversized payload",
      Buffer.concat([prefix(header.length, MAX_PAYLOAD_BYTES + 1), header, Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x41)]),
      "too_large",
      "big1",
      /exceeds the limit/,
    );
    // A header length over the limit: the stream is out of step; the agent resynchronises.
    await expectError("oversized header length", Buffer.concat([prefix(MAX_HEADER_BYTES + 1, 0), Buffer.from("xyz")]), "too_large", null);
  } finally {
    assert.equal(await agent.close(), 0);
  }
});

test("agent over stdio: a handler that fails answers `internal`, and the agent carries on", async () => {
  const agent = AgentHarness.start();
  try {
    await agent.ok({ type: "status" });
    // Make the journal unwritable in a way even root cannot get around: a file where its folder was.
    const journal = path.join(agent.dataDir, "journal");
    fs.rmSync(journal, { recursive: true });
    fs.writeFileSync(journal, "not a folder");
    const answer = await agent.request({ type: "run", code: "echo x", session: { lang: "sh", resources: {} } });
    assert.equal(answer.type, "error");
    assert.equal(answer.type === "error" && answer.code, "internal");
    assert.match(answer.type === "error" ? answer.message : "", /the agent failed handling 'run': ENOTDIR/);
    assert.doesNotMatch(answer.type === "error" ? answer.message : "", /\n\s+at /, "no stack trace in the reply");
    assert.match(fs.readFileSync(path.join(agent.dataDir, "agent.log"), "utf8"), /internal error handling 'run'[^]*\n\s+at /);
    assert.equal((await agent.request({ type: "status" })).type, "reply");
  } finally {
    assert.equal(await agent.close(), 0);
  }
});
