/**
 * Benchmark: volume transfers over the SSH transport against scp, in one run, against one real
 * sshd on a loopback port (test/helpers/sshd.ts):
 *
 *   - one large file (default 1 GiB): %volume put / get (ssh2 -> `farlab-agent serve --stdio`)
 *     vs `scp` up / down of the same file;
 *   - many small files (default 10,000 of 1-4 KiB): put / get of the folder vs `scp -r`;
 *   - peak RSS of the kernel side (this process: the same transfer code %volume runs) and of the
 *     agent (VmHWM of its process) during the transfers, above their idle RSS.
 *
 * Ratios are farlab throughput / scp throughput (>= 1 means farlab was faster).
 *
 *   npx tsc -p . && node dist/bench/transfer.js [--mib 1024] [--files 10000]
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AgentClient } from "../extension/remote/agent-client";
import { connectSsh } from "../extension/transports/ssh";
import { getPath, putPath } from "../extension/remote/volume-transfer";
import { Sshd } from "../test/helpers/sshd";

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const MIB = argument("mib", 1024);
const FILES = argument("files", 10_000);

interface Row {
  what: string;
  farlabS: number;
  scpS: number;
  bytes: number;
}

function rssMiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return kib / 1024;
}

/** The agent process serving this benchmark (its command line names our data dir). */
function findAgentPid(dataDir: string): number {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(dataDir) && cmdline.includes("serve")) return Number(entry);
    } catch {
      // gone
    }
  }
  throw new Error("agent process not found");
}

/** Samples this process's RSS while `action` runs; returns its time and the peak. */
async function measured<T>(action: () => Promise<T>): Promise<{ seconds: number; peakRssMiB: number; value: T }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const started = process.hrtime.bigint();
  try {
    const value = await action();
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, peakRssMiB: peak / 1048576, value };
  } finally {
    clearInterval(timer);
  }
}

function timed(action: () => void): number {
  const started = process.hrtime.bigint();
  action();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-bench-transfer-"));
  const sshd = await Sshd.start();
  const dataDir = path.join(work, "agent-data");
  const knownHosts = path.join(work, "known_hosts");
  fs.writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n`);
  const client = new AgentClient(
    () =>
      connectSsh(sshd.agentConnectOptions(dataDir, knownHosts)),
    { name: "bench", reconnectAttempts: 0 },
  );
  const scpOptions = ["-q", "-P", String(sshd.port), "-i", sshd.clientKeyFile, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"];
  const remote = (p: string) => `${sshd.user}@${sshd.host}:${p}`;
  const rows: Row[] = [];
  try {
    await client.request({ type: "volume_create", name: "bench" });
    const agentPid = findAgentPid(dataDir);
    const kernelIdle = process.memoryUsage().rss / 1048576;
    const agentIdle = rssMiB(agentPid, "VmRSS");
    let kernelPeak = kernelIdle;

    // One large file.
    const big = path.join(work, "big.bin");
    const fd = fs.openSync(big, "w");
    const block = randomBytes(1024 * 1024);
    for (let i = 0; i < MIB; i++) {
      block.writeUInt32LE(i, 0); // not one repeated block end to end
      fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
    const bytes = MIB * 1048576;
    const put = await measured(() => putPath(client, "bench", big, "big.bin"));
    kernelPeak = Math.max(kernelPeak, put.peakRssMiB);
    const scpUp = timed(() => execFileSync("scp", [...scpOptions, big, remote(path.join(work, "scp-big.bin"))]));
    fs.rmSync(path.join(work, "scp-big.bin"));
    rows.push({ what: `${MIB} MiB file up (put vs scp)`, farlabS: put.seconds, scpS: scpUp, bytes });
    const get = await measured(() => getPath(client, "bench", "big.bin", path.join(work, "big.back")));
    kernelPeak = Math.max(kernelPeak, get.peakRssMiB);
    fs.rmSync(path.join(work, "big.back"));
    const scpDown = timed(() => execFileSync("scp", [...scpOptions, remote(big), path.join(work, "scp-big.back")]));
    fs.rmSync(path.join(work, "scp-big.back"));
    rows.push({ what: `${MIB} MiB file down (get vs scp)`, farlabS: get.seconds, scpS: scpDown, bytes });
    fs.rmSync(big);
    await client.request({ type: "volume_rm", name: "bench", path: "big.bin", recursive: false });

    // Many small files.
    const small = path.join(work, "small");
    let smallBytes = 0;
    for (let i = 0; i < FILES; i++) {
      const dir = path.join(small, `d${i % 100}`);
      if (i < 100) fs.mkdirSync(dir, { recursive: true });
      const data = randomBytes(1024 + ((i * 7919) % 3072));
      smallBytes += data.length;
      fs.writeFileSync(path.join(dir, `f${i}.dat`), data);
    }
    const putSmall = await measured(() => putPath(client, "bench", small, "small"));
    kernelPeak = Math.max(kernelPeak, putSmall.peakRssMiB);
    const scpUpSmall = timed(() => execFileSync("scp", [...scpOptions, "-r", small, remote(path.join(work, "scp-small"))]));
    rows.push({ what: `${FILES} small files up (put vs scp -r)`, farlabS: putSmall.seconds, scpS: scpUpSmall, bytes: smallBytes });
    const getSmall = await measured(() => getPath(client, "bench", "small", path.join(work, "small-back")));
    kernelPeak = Math.max(kernelPeak, getSmall.peakRssMiB);
    const scpDownSmall = timed(() => execFileSync("scp", [...scpOptions, "-r", remote(small), path.join(work, "scp-small-back")]));
    rows.push({ what: `${FILES} small files down (get vs scp -r)`, farlabS: getSmall.seconds, scpS: scpDownSmall, bytes: smallBytes });
    const agentPeak = rssMiB(agentPid, "VmHWM");

    const mibs = (b: number, s: number) => (b / 1048576 / s).toFixed(1);
    console.log(`\nvolume transfers over SSH (loopback sshd, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)})`);
    console.log("| transfer | farlab s | farlab MiB/s | scp s | scp MiB/s | farlab/scp throughput |");
    console.log("|---|---|---|---|---|---|");
    for (const row of rows) {
      console.log(`| ${row.what} | ${row.farlabS.toFixed(2)} | ${mibs(row.bytes, row.farlabS)} | ${row.scpS.toFixed(2)} | ${mibs(row.bytes, row.scpS)} | ${(row.scpS / row.farlabS).toFixed(2)}x |`);
    }
    console.log(`\nkernel side RSS: idle ${kernelIdle.toFixed(0)} MiB, peak during transfers ${kernelPeak.toFixed(0)} MiB (+${(kernelPeak - kernelIdle).toFixed(0)} MiB)`);
    console.log(`agent RSS: idle ${agentIdle.toFixed(0)} MiB, peak (VmHWM) ${agentPeak.toFixed(0)} MiB (+${(agentPeak - agentIdle).toFixed(0)} MiB)`);
  } finally {
    client.close();
    await sshd.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
