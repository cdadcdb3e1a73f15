/**
 * Benchmark: the three ways to reach an agent, in one run, through the AgentClient the kernel
 * uses: the embedded agent (`serve --stdio`, a child process), ZeroMQ (`serve --listen` on
 * loopback, CURVE) and SSH (Debian's sshd on loopback running `serve --stdio`, ssh2 client).
 * For each: the p50 (and p95) of a warm remote cell (a Python cell `x = 1` in a running session,
 * from the `run` request to `done`), and stdout throughput (a Python cell writing MiB of lines,
 * until `done`). Ratios are against the embedded agent measured in the same run.
 *
 *   npx tsc -p . && node dist/bench/transports.js [--cells 200] [--mib 32]
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AgentClient, type Connector } from "../extension/remote/agent-client";
import { connectSsh } from "../extension/transports/ssh";
import { connectZmq } from "../extension/transports/zmq";
import { loadOrCreateKeyPair } from "../remote-agent/keys/keypair";
import { StreamTransport } from "../remote-agent/protocol/framing";
import type { SessionRef } from "../remote-agent/protocol/messages";
import { AGENT_CLI, ListeningAgent } from "../test/helpers/listening-agent";
import { Sshd } from "../test/helpers/sshd";
import { option } from "./lib";

const CELLS = Number(option("cells", "200"));
const WARMUP = 20;
const MIB = Number(option("mib", "32"));
const SESSION: SessionRef = { lang: "python", resources: {}, fresh: false };

interface Numbers {
  p50: number;
  p95: number;
  mibPerS: number;
}

async function runCell(client: AgentClient, code: string): Promise<number> {
  const stream = await client.run({ session: SESSION, code });
  let bytes = 0;
  for await (const { event } of stream) {
    if (event.kind === "stream") bytes += Buffer.byteLength(event.text);
    if (event.kind === "done" && event.status !== "ok") throw new Error(`the cell ended ${event.status}`);
  }
  return bytes;
}

async function measure(label: string, connector: Connector): Promise<Numbers> {
  const client = new AgentClient(connector, { name: label, reconnectAttempts: 0 });
  try {
    for (let i = 0; i < WARMUP; i++) await runCell(client, "x = 1");
    const times: number[] = [];
    for (let i = 0; i < CELLS; i++) {
      const start = process.hrtime.bigint();
      await runCell(client, "x = 1");
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);
    const line = "x".repeat(1023) + "\\n";
    const code = `import sys\nchunk = "${line}" * 1024\nfor _ in range(${MIB}):\n    sys.stdout.write(chunk)\nsys.stdout.flush()`;
    const start = process.hrtime.bigint();
    const bytes = await runCell(client, code);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (bytes !== MIB * 1024 * 1024) throw new Error(`${label}: received ${bytes} bytes of ${MIB} MiB`);
    return { p50: times[Math.floor(times.length / 2)], p95: times[Math.floor(times.length * 0.95)], mibPerS: MIB / seconds };
  } finally {
    client.close();
  }
}

async function main(): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-bench-transports-"));
  const results: Record<string, Numbers> = {};

  // Embedded: `serve --stdio` as a child, as the kernel starts it.
  results.embedded = await measure("embedded", async () => {
    const child = spawn(process.execPath, [AGENT_CLI, "serve", "--stdio", "--data-dir", path.join(scratch, "embedded")], { stdio: ["pipe", "pipe", "ignore"] });
    const transport = new StreamTransport(child.stdout, child.stdin);
    return { send: (h, p) => transport.send(h, p), frames: transport.frames, close: () => transport.close() };
  });

  const agent = await ListeningAgent.start({ dataDir: path.join(scratch, "zmq") });
  const keys = loadOrCreateKeyPair(path.join(scratch, "client"), "client");
  agent.authorize(keys.publicKey, "bench");
  try {
    results.zeromq = await measure("zeromq", () => connectZmq({ url: agent.url, serverKey: agent.serverKey, clientKeys: keys }));
  } finally {
    await agent.stop();
  }

  const sshd = await Sshd.start();
  const knownHosts = path.join(scratch, "known_hosts");
  fs.writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n`);
  try {
    results.ssh = await measure("ssh", () =>
      connectSsh(sshd.agentConnectOptions(path.join(scratch, "ssh"), knownHosts)),
    );
  } finally {
    await sshd.stop();
  }
  fs.rmSync(scratch, { recursive: true, force: true });

  const base = results.embedded;
  const rows = Object.entries(results).map(([name, n]) => [
    name,
    n.p50.toFixed(2),
    n.p95.toFixed(2),
    `${(n.p50 / base.p50).toFixed(2)}x`,
    n.mibPerS.toFixed(1),
    `${(n.mibPerS / base.mibPerS).toFixed(2)}x`,
  ]);
  const headers = ["transport", "warm cell p50 ms", "p95 ms", "p50 vs embedded", "stdout MiB/s", "throughput vs embedded"];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  process.stdout.write(`${CELLS} warm cells (after ${WARMUP}) and ${MIB} MiB of stdout per transport, node ${process.version}, ${os.cpus().length} CPUs\n`);
  process.stdout.write(`${line(headers)}\n${rows.map(line).join("\n")}\n`);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
