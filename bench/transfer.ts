/**
 * Benchmark: volume transfers over the SSH transport against scp, in one run, against one real
 * sshd on a loopback port (test/helpers/sshd.ts):
 *
 *   - one large file (default 1 GiB): %volume put / get (ssh2 -> `farlab-agent serve --stdio`)
 *     vs `scp` up / down of the same file;
 *   - many small files (default 10,000 of 1-4 KiB): put / get of the folder vs `scp -r`;
 *   - peak RSS of the kernel side (this process: the same transfer code %volume runs in the
 *     executor, with the executor's TypeScript compiler loaded, so that its heap is as large) and
 *     of the agent during each transfer, above their idle RSS before the first one.
 *
 * Each transfer runs ROUNDS times (default 3), farlab and scp alternating, and the table shows
 * the medians: one round's rates swing by 30% on a small, shared machine. Ratios are farlab
 * throughput / scp throughput (>= 1 means farlab was faster), from the medians, with the range of
 * the rounds' own ratios beside them.
 *
 * CPU time per MiB moved is printed too, for both tools and both ends: it does not depend on
 * what else runs on the machine, unlike the wall-clock rates. farlab: the kernel side (this
 * process, process.cpuUsage), the agent and the sshd process serving its connection (/proc
 * stat); scp: the local scp and ssh (this process's reaped children) and the remote side (sshd
 * and `scp -t`/`scp -f`, reaped by the sshd listener once the connection closed).
 *
 *   npx tsc -p . && node dist/bench/transfer.js [--mib 1024] [--files 10000] [--rounds 3]
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
import { TypeScriptEngine } from "../kernel/executor/typescript-engine";
import { median, option, runBench } from "./lib";

const MIB = Number(option("mib", "1024"));
const FILES = Number(option("files", "10000"));
const ROUNDS = Number(option("rounds", "3"));

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

/** One round of one transfer: farlab's and scp's times, CPU, and the peak RSS around farlab's. */
interface Round {
  farlabS: number;
  scpS: number;
  farlabCpu: FarlabCpu;
  scpCpu: ScpCpu;
  kernelPeakMiB: number;
  agentPeakMiB: number;
}

interface Row {
  what: string;
  bytes: number;
  rounds: Round[];
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

/** Runs `action`; returns its time, everyone's CPU, and the peak RSS of this process and the agent. */
async function measured(parties: { agent: number; sshd: number }, action: () => Promise<unknown>): Promise<{ seconds: number; cpu: FarlabCpu; kernelPeakMiB: number; agentPeakMiB: number }> {
  let kernelPeak = process.memoryUsage.rss();
  let agentPeak = rssMiB(parties.agent, "VmRSS");
  const timer = setInterval(() => {
    kernelPeak = Math.max(kernelPeak, process.memoryUsage.rss());
    agentPeak = Math.max(agentPeak, rssMiB(parties.agent, "VmRSS"));
  }, 20);
  const agent = procStat(parties.agent).self;
  const sshd = procStat(parties.sshd).self;
  const kernel = process.cpuUsage();
  const started = process.hrtime.bigint();
  try {
    await action();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(kernel);
    const cpu = { kernel: (used.user + used.system) / 1000, agent: procStat(parties.agent).self - agent, sshd: procStat(parties.sshd).self - sshd };
    return { seconds, cpu, kernelPeakMiB: kernelPeak / 1048576, agentPeakMiB: agentPeak };
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
  // This process stands for the kernel side, the executor, which runs %volume next to the
  // TypeScript compiler: load and warm it too, so that collections mark a heap of that size.
  new TypeScriptEngine().warm();
  const loadAtStart = os.loadavg()[0].toFixed(1);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-bench-transfer-"));
  const sshd = await Sshd.start();
  const dataDir = path.join(work, "agent-data");
  const knownHosts = path.join(work, "known_hosts");
  fs.writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n`);
  const client = new AgentClient(() => connectSsh(sshd.agentConnectOptions(dataDir, knownHosts)), { name: "bench", reconnectAttempts: 0 });
  const scpOptions = ["-q", "-P", String(sshd.port), "-i", sshd.clientKeyFile, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"];
  const remote = (p: string) => `${sshd.user}@${sshd.host}:${p}`;
  try {
    await client.request({ type: "volume_create", name: "bench" });
    const agentPid = findAgentPid(dataDir);
    const parties = { agent: agentPid, sshd: sshdOf(agentPid) };
    const listener = sshdListenerOf(agentPid);
    const scp = (args: string[]) => timedScp(listener, [...scpOptions, ...args]);

    const big = path.join(work, "big.bin");
    const fd = fs.openSync(big, "w");
    const block = randomBytes(1024 * 1024);
    for (let i = 0; i < MIB; i++) {
      block.writeUInt32LE(i, 0); // not one repeated block end to end
      fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
    const small = path.join(work, "small");
    let smallBytes = 0;
    for (let i = 0; i < FILES; i++) {
      const dir = path.join(small, `d${i % 100}`);
      if (i < 100) fs.mkdirSync(dir, { recursive: true });
      const data = randomBytes(1024 + ((i * 7919) % 3072));
      smallBytes += data.length;
      fs.writeFileSync(path.join(dir, `f${i}.dat`), data);
    }

    // Idle: after making the data (its buffers are this process's, not the transfers'), before any transfer.
    const kernelIdle = process.memoryUsage.rss() / 1048576;
    const agentIdle = rssMiB(agentPid, "VmRSS");

    /** One round of a farlab transfer against the scp command doing the same; `clean` removes
     * what both wrote, so that every round starts from the same state. */
    const round = async (farlab: () => Promise<unknown>, scpArgs: string[], clean: () => Promise<void>): Promise<Round> => {
      const run = await measured(parties, farlab);
      const scpRun = await scp(scpArgs);
      await clean();
      return { farlabS: run.seconds, scpS: scpRun.seconds, farlabCpu: run.cpu, scpCpu: scpRun.cpu, kernelPeakMiB: run.kernelPeakMiB, agentPeakMiB: run.agentPeakMiB };
    };
    const removeLocal = (...paths: string[]) => {
      for (const p of paths) fs.rmSync(path.join(work, p), { recursive: true, force: true });
    };
    const removeRemote = (volumePath: string) => client.request({ type: "volume_rm", name: "bench", path: volumePath, recursive: true }).then(() => undefined);
    const rows: Row[] = [
      { what: `${MIB} MiB file up (put vs scp)`, bytes: MIB * 1048576, rounds: [] },
      { what: `${MIB} MiB file down (get vs scp)`, bytes: MIB * 1048576, rounds: [] },
      { what: `${FILES} small files up (put vs scp -r)`, bytes: smallBytes, rounds: [] },
      { what: `${FILES} small files down (get vs scp -r)`, bytes: smallBytes, rounds: [] },
    ];
    for (let r = 0; r < ROUNDS; r++) {
      // Up then down: the download reads what the upload stored. The volume copy is removed only
      // after the download, the scp copies right away.
      rows[0].rounds.push(await round(() => putPath(client, "bench", big, "big.bin"), [big, remote(path.join(work, "scp-big.bin"))], async () => removeLocal("scp-big.bin")));
      rows[1].rounds.push(
        await round(() => getPath(client, "bench", "big.bin", path.join(work, "big.back")), [remote(big), path.join(work, "scp-big.back")], async () => {
          removeLocal("big.back", "scp-big.back");
          await removeRemote("big.bin");
        }),
      );
      rows[2].rounds.push(await round(() => putPath(client, "bench", small, "small"), ["-r", small, remote(path.join(work, "scp-small"))], async () => removeLocal("scp-small")));
      rows[3].rounds.push(
        await round(() => getPath(client, "bench", "small", path.join(work, "small-back")), ["-r", remote(small), path.join(work, "scp-small-back")], async () => {
          removeLocal("small-back", "scp-small-back");
          await removeRemote("small");
        }),
      );
    }
    report(rows, { loadAtStart, kernelIdle, agentIdle });
  } finally {
    client.close();
    await sshd.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function report(rows: Row[], context: { loadAtStart: string; kernelIdle: number; agentIdle: number }): void {
  const mibs = (b: number, s: number) => (b / 1048576 / s).toFixed(1);
  const of = (row: Row, pick: (round: Round) => number) => median(row.rounds.map(pick));
  console.log(`\nvolume transfers over SSH (loopback sshd, ${os.cpus().length} cores, load ${context.loadAtStart} at start, ${os.loadavg()[0].toFixed(1)} at end; medians of ${ROUNDS} rounds)`);
  console.log("| transfer | farlab s | farlab MiB/s | scp s | scp MiB/s | farlab/scp throughput | rounds' ratios |");
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) {
    const farlabS = of(row, (r) => r.farlabS);
    const scpS = of(row, (r) => r.scpS);
    const ratios = row.rounds.map((r) => r.scpS / r.farlabS);
    console.log(
      `| ${row.what} | ${farlabS.toFixed(2)} | ${mibs(row.bytes, farlabS)} | ${scpS.toFixed(2)} | ${mibs(row.bytes, scpS)} | ${(scpS / farlabS).toFixed(2)}x | ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x |`,
    );
  }
  const perMiB = (ms: number, b: number) => (ms / (b / 1048576)).toFixed(2);
  console.log("\nCPU time per MiB moved (ms, medians; independent of the machine's load)");
  console.log("| transfer | farlab kernel side | farlab agent | farlab sshd | farlab total | scp local (scp+ssh) | scp remote (sshd+scp) | scp total |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const row of rows) {
    const b = row.bytes;
    const cells = [
      (r: Round) => r.farlabCpu.kernel,
      (r: Round) => r.farlabCpu.agent,
      (r: Round) => r.farlabCpu.sshd,
      (r: Round) => r.farlabCpu.kernel + r.farlabCpu.agent + r.farlabCpu.sshd,
      (r: Round) => r.scpCpu.local,
      (r: Round) => r.scpCpu.remote,
      (r: Round) => r.scpCpu.local + r.scpCpu.remote,
    ].map((pick) => perMiB(of(row, pick), b));
    console.log(`| ${row.what} | ${cells.join(" | ")} |`);
  }
  console.log(`\nRSS above idle (kernel side ${context.kernelIdle.toFixed(0)} MiB, agent ${context.agentIdle.toFixed(0)} MiB), the highest peak over the rounds`);
  console.log("| transfer | kernel side | agent |");
  console.log("|---|---|---|");
  for (const row of rows) {
    const kernel = Math.max(...row.rounds.map((r) => r.kernelPeakMiB)) - context.kernelIdle;
    const agent = Math.max(...row.rounds.map((r) => r.agentPeakMiB)) - context.agentIdle;
    console.log(`| ${row.what} | +${kernel.toFixed(0)} MiB | +${agent.toFixed(0)} MiB |`);
  }
}

runBench(main);
