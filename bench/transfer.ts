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
 * CPU time per MiB moved is printed too, for both tools and both ends: it does not depend on
 * what else runs on the machine, unlike the wall-clock rates. farlab: the kernel side (this
 * process, process.cpuUsage), the agent and the sshd process serving its connection (/proc
 * stat); scp: the local scp and ssh (this process's reaped children) and the remote side (sshd
 * and `scp -t`/`scp -f`, reaped by the sshd listener once the connection closed).
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

/** CPU milliseconds spent by each party of one transfer. */
interface FarlabCpu {
  kernel: number;
  agent: number;
  sshd: number;
}
interface ScpCpu {
  local: number;
  remote: number;
}

interface Row {
  what: string;
  farlabS: number;
  scpS: number;
  bytes: number;
  farlabCpu: FarlabCpu;
  scpCpu: ScpCpu;
}

const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** A process's CPU time (ms) from /proc/PID/stat: its own, its reaped children's, and its parent. */
function procStat(pid: number): { self: number; children: number; ppid: number; comm: string } {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" "); // fields[0] is field 3 (state)
  return {
    comm: text.slice(text.indexOf("(") + 1, close),
    ppid: Number(fields[1]),
    self: (Number(fields[11]) + Number(fields[12])) * TICK_MS,
    children: (Number(fields[13]) + Number(fields[14])) * TICK_MS,
  };
}

/** The sshd process that serves the agent's connection (the agent's nearest sshd ancestor). */
function sshdOf(pid: number): number {
  for (let at = procStat(pid).ppid; at > 1; at = procStat(at).ppid) if (procStat(at).comm === "sshd") return at;
  throw new Error("the agent does not run under sshd");
}

/** The sshd listener this benchmark started (the agent's ancestor whose parent is this process). */
function sshdListenerOf(pid: number): number {
  for (let at = procStat(pid).ppid; at > 1; at = procStat(at).ppid) if (procStat(at).ppid === process.pid) return at;
  throw new Error("the agent does not run under this benchmark's sshd");
}

function childrenOf(pid: number): number {
  return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).length;
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
/** Samples this process's RSS while `action` runs; returns its time, the peak and everyone's CPU. */
async function measured<T>(
  parties: { agent: number; sshd: number },
  action: () => Promise<T>,
): Promise<{ seconds: number; peakRssMiB: number; cpu: FarlabCpu; value: T }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const agent = procStat(parties.agent).self;
  const sshd = procStat(parties.sshd).self;
  const kernel = process.cpuUsage();
  const started = process.hrtime.bigint();
  try {
    const value = await action();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(kernel);
    const cpu = { kernel: (used.user + used.system) / 1000, agent: procStat(parties.agent).self - agent, sshd: procStat(parties.sshd).self - sshd };
    return { seconds, peakRssMiB: peak / 1048576, cpu, value };
  } finally {
    clearInterval(timer);
  }
}

/** Runs scp; returns its time and the CPU of both ends (the remote end once sshd reaped it). */
async function timedScp(sshdPid: number, args: string[]): Promise<{ seconds: number; cpu: ScpCpu }> {
  const connectionsBefore = childrenOf(sshdPid);
  const local = procStat(process.pid).children;
  const remote = procStat(sshdPid).children;
  const started = process.hrtime.bigint();
  execFileSync("scp", args);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // scp's own sshd processes exit just after it; poll (not timed) until the listener reaped them.
  while (childrenOf(sshdPid) > connectionsBefore) await new Promise((resolve) => setTimeout(resolve, 10));
  return { seconds, cpu: { local: procStat(process.pid).children - local, remote: procStat(sshdPid).children - remote } };
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0].toFixed(1);
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
    const parties = { agent: agentPid, sshd: sshdOf(agentPid) };
    const listener = sshdListenerOf(agentPid);
    const scp = (args: string[]) => timedScp(listener, [...scpOptions, ...args]);
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
    const put = await measured(parties, () => putPath(client, "bench", big, "big.bin"));
    kernelPeak = Math.max(kernelPeak, put.peakRssMiB);
    const scpUp = await scp([big, remote(path.join(work, "scp-big.bin"))]);
    fs.rmSync(path.join(work, "scp-big.bin"));
    rows.push({ what: `${MIB} MiB file up (put vs scp)`, farlabS: put.seconds, scpS: scpUp.seconds, bytes, farlabCpu: put.cpu, scpCpu: scpUp.cpu });
    const get = await measured(parties, () => getPath(client, "bench", "big.bin", path.join(work, "big.back")));
    kernelPeak = Math.max(kernelPeak, get.peakRssMiB);
    fs.rmSync(path.join(work, "big.back"));
    const scpDown = await scp([remote(big), path.join(work, "scp-big.back")]);
    fs.rmSync(path.join(work, "scp-big.back"));
    rows.push({ what: `${MIB} MiB file down (get vs scp)`, farlabS: get.seconds, scpS: scpDown.seconds, bytes, farlabCpu: get.cpu, scpCpu: scpDown.cpu });
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
    const putSmall = await measured(parties, () => putPath(client, "bench", small, "small"));
    kernelPeak = Math.max(kernelPeak, putSmall.peakRssMiB);
    const scpUpSmall = await scp(["-r", small, remote(path.join(work, "scp-small"))]);
    rows.push({ what: `${FILES} small files up (put vs scp -r)`, farlabS: putSmall.seconds, scpS: scpUpSmall.seconds, bytes: smallBytes, farlabCpu: putSmall.cpu, scpCpu: scpUpSmall.cpu });
    const getSmall = await measured(parties, () => getPath(client, "bench", "small", path.join(work, "small-back")));
    kernelPeak = Math.max(kernelPeak, getSmall.peakRssMiB);
    const scpDownSmall = await scp(["-r", remote(small), path.join(work, "scp-small-back")]);
    rows.push({ what: `${FILES} small files down (get vs scp -r)`, farlabS: getSmall.seconds, scpS: scpDownSmall.seconds, bytes: smallBytes, farlabCpu: getSmall.cpu, scpCpu: scpDownSmall.cpu });
    const agentPeak = rssMiB(agentPid, "VmHWM");

    const mibs = (b: number, s: number) => (b / 1048576 / s).toFixed(1);
    console.log(`\nvolume transfers over SSH (loopback sshd, ${os.cpus().length} cores, load ${loadAtStart} at start, ${os.loadavg()[0].toFixed(1)} at end)`);
    console.log("| transfer | farlab s | farlab MiB/s | scp s | scp MiB/s | farlab/scp throughput |");
    console.log("|---|---|---|---|---|---|");
    for (const row of rows) {
      console.log(`| ${row.what} | ${row.farlabS.toFixed(2)} | ${mibs(row.bytes, row.farlabS)} | ${row.scpS.toFixed(2)} | ${mibs(row.bytes, row.scpS)} | ${(row.scpS / row.farlabS).toFixed(2)}x |`);
    }
    const perMiB = (ms: number, b: number) => (ms / (b / 1048576)).toFixed(2);
    console.log("\nCPU time per MiB moved (ms; independent of the machine's load)");
    console.log("| transfer | farlab kernel side | farlab agent | farlab sshd | farlab total | scp local (scp+ssh) | scp remote (sshd+scp) | scp total |");
    console.log("|---|---|---|---|---|---|---|---|");
    for (const { what, bytes: b, farlabCpu: f, scpCpu: c } of rows) {
      console.log(`| ${what} | ${perMiB(f.kernel, b)} | ${perMiB(f.agent, b)} | ${perMiB(f.sshd, b)} | ${perMiB(f.kernel + f.agent + f.sshd, b)} | ${perMiB(c.local, b)} | ${perMiB(c.remote, b)} | ${perMiB(c.local + c.remote, b)} |`);
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
