/**
 * No output lost when the link drops, over both network transports, through the AgentClient the
 * kernel uses: a TCP proxy (test/helpers/tcp-proxy.ts) sits between the client and a real agent
 * (`farlab-agent serve --listen` over ZeroMQ; Debian's sshd running `serve --stdio` over SSH) and
 * is cut three times while a job prints numbered lines. The client reconnects through the proxy,
 * attaches from the last event it received, and must see every line exactly once, in order,
 * while the job ran on. The cuts are triggered by the output itself (after 40, 80 and 120 lines
 * have arrived, each once the link is back up), never by timers; the job prints its last line only
 * when the test, after the third reconnect, creates a file it waits for.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { AgentClient, type LinkStatus } from "../extension/remote/agent-client";
import { connectSsh } from "../extension/transports/ssh";
import { connectZmq } from "../extension/transports/zmq";
import { loadOrCreateKeyPair } from "../remote-agent/keys/keypair";
import type { JobEvent } from "../remote-agent/protocol/messages";
import { ListeningAgent } from "./helpers/listening-agent";
import { Sshd } from "./helpers/sshd";
import { TcpProxy } from "./helpers/tcp-proxy";

const LINES = 300;
const CUT_AFTER = [40, 80, 120];
/**
 * Prints LINES numbered lines, flushed one by one, a few milliseconds apart, then waits for
 * `release` to exist and prints "the end": the job outlives the cuts whatever the machine's speed.
 */
function numberedLines(release: string): string {
  return [
    "import os, time",
    `for i in range(1, ${LINES + 1}):`,
    '    print(f"line {i}", flush=True)',
    "    time.sleep(0.005)",
    `while not os.path.exists(${JSON.stringify(release)}):`,
    "    time.sleep(0.02)",
    'print("the end", flush=True)',
  ].join("\n");
}

let work: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-reconnect-"));
});

after(() => {
  if (!process.env.FARLAB_TEST_DEBUG) fs.rmSync(work, { recursive: true, force: true });
});

interface Received {
  text: string;
  links: LinkStatus[];
  doneAfterLastCut: boolean;
  done?: Extract<JobEvent["event"], { kind: "done" }>;
}

/** Runs the numbered-lines job through `client`, cutting `proxy` as the output arrives. */
async function runWithCuts(client: AgentClient, proxy: TcpProxy, release: string): Promise<Received> {
  const stream = await client.run({ session: { lang: "python", resources: {}, fresh: false }, code: numberedLines(release) });
  const links: LinkStatus[] = [];
  const debug = process.env.FARLAB_TEST_DEBUG ? (m: string) => process.stderr.write(`[reconnect-test] ${m}\n`) : () => undefined;
  stream.onLink((status) => {
    debug(JSON.stringify(status));
    links.push(status);
    // Back up after the last cut: let the job finish.
    if (status.state === "reconnected" && links.filter((l) => l.state === "reconnected").length === CUT_AFTER.length) {
      fs.writeFileSync(release, "");
    }
  });
  let text = "";
  let cuts = 0;
  let doneAfterLastCut = false;
  let done: Received["done"];
  for await (const { event } of stream) {
    if (event.kind === "stream") {
      text += event.text;
      const lines = text.split("\n").length - 1;
      const linkUp = links.filter((l) => l.state === "reconnected").length === cuts;
      if (cuts < CUT_AFTER.length && lines >= CUT_AFTER[cuts] && linkUp) {
        debug(`cut at ${lines} lines`);
        assert.ok(proxy.cut() > 0, "the proxy had a connection to cut");
        cuts++;
      }
    }
    if (event.kind === "done") {
      done = event;
      doneAfterLastCut = cuts === CUT_AFTER.length;
    }
  }
  return { text, links, doneAfterLastCut, done };
}

function assertEveryLineOnce(received: Received): void {
  assert.equal(received.done?.status, "ok", `the job ended ${received.done?.status}`);
  const lines = received.text.split("\n").filter((line) => line !== "");
  const expected = [...Array.from({ length: LINES }, (_, i) => `line ${i + 1}`), "the end"];
  assert.deepEqual(lines, expected, "every line exactly once, in order");
  assert.ok(received.doneAfterLastCut, "the job was still running when the link was cut the third time");
  const reconnected = received.links.filter((l) => l.state === "reconnected");
  assert.equal(reconnected.length, CUT_AFTER.length, `one reconnect per cut: ${JSON.stringify(received.links)}`);
  assert.ok(received.links.some((l) => l.state === "reconnecting" && l.attempt === 1));
}

test("ZeroMQ: a job's output survives three cuts of the link, every line once and in order", async () => {
  const agent = await ListeningAgent.start();
  const keys = loadOrCreateKeyPair(path.join(work, "zmq-client"), "client");
  agent.authorize(keys.publicKey, "reconnect-test");
  const port = agent.port;
  const proxy = await TcpProxy.start("127.0.0.1", port);
  const client = new AgentClient(() => connectZmq({ url: proxy.url("tcp"), serverKey: agent.serverKey, clientKeys: keys }), {
    name: "zmq-through-proxy",
    reconnectAttempts: 10,
    reconnectBaseMs: 20,
    user: "reconnect-test",
  });
  try {
    assertEveryLineOnce(await runWithCuts(client, proxy, path.join(work, "release-zmq")));
    assert.equal(proxy.connections, 1 + CUT_AFTER.length, "one new connection per cut");
  } finally {
    client.close();
    await proxy.close();
    await agent.stop();
  }
});

test("SSH: a job's output survives three cuts of the link, every line once and in order", async () => {
  const sshd = await Sshd.start();
  const proxy = await TcpProxy.start(sshd.host, sshd.port);
  const knownHosts = path.join(work, "known_hosts");
  fs.writeFileSync(knownHosts, `${sshd.knownHostsLine(proxy.port)}\n`);
  const release = path.join(work, "release-ssh");
  const client = new AgentClient(
    () =>
      connectSsh({ ...sshd.agentConnectOptions(path.join(work, "ssh-agent-data"), knownHosts), url: proxy.url("ssh", sshd.user) }),
    { name: "ssh-through-proxy", reconnectAttempts: 10, reconnectBaseMs: 20, user: "reconnect-test" },
  );
  try {
    // Each reconnect is a new `serve --stdio` process on the host, which follows the job that the
    // previous one (whose client went away) still runs, through the journal.
    const received = await runWithCuts(client, proxy, release);
    if (process.env.FARLAB_TEST_DEBUG) process.stderr.write(`[reconnect-test] received done ${JSON.stringify(received.done)}\n`);
    assertEveryLineOnce(received);
    assert.equal(proxy.connections, 1 + CUT_AFTER.length, "one new SSH connection per cut");
  } finally {
    // Whatever happened, let the job end: the agent process that runs it is sshd's, not ours.
    fs.writeFileSync(release, "");
    client.close();
    if (process.env.FARLAB_TEST_DEBUG) process.stderr.write(`[reconnect-test] closing proxy\n`);
    await proxy.close();
    if (process.env.FARLAB_TEST_DEBUG) process.stderr.write(`[reconnect-test] stopping sshd\n`);
    await sshd.stop();
  }
});
