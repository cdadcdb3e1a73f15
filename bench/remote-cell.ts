/**
 * Benchmark: `%%remote` through the real kernel and the embedded agent, against ipykernel +
 * ipyparallel 7.1's `%%px` on one local engine (Debian's), in one run through the same client
 * (bench/remote_cell_driver.py on Debian's jupyter_client):
 * - warm round trip of a trivial cell (`1+1`, TypeScript and Python) vs `%%px 1+1` (goal <= 0.5x at p50),
 *   with two layers below it for where the time goes: the kernel's own local `1+1`, and the agent
 *   alone (this process's AgentClient -> embedded agent over stdio, `run` -> `done`, no kernel;
 *   `--agent-runs` cells, 300 by default), with the CPU time per cell of the agent and its runtime;
 * - cold session start: execute_request -> first stream message of a new named session, and of `--fresh`;
 * - a Python cell printing 100 MB: kernel + executor RSS growth (goal <= 50 MiB), iopub messages
 *   per second, how much of it reached the notebook (the per-cell cap of docs/remote-magics.md).
 *
 *   npx tsc -p . && node scripts/bundle-runtimes.js && node dist/bench/remote-cell.js --runs 50
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { AgentClient } from "../extension/remote/agent-client";
import { spawnEmbeddedAgent } from "../extension/remote/embedded-agent";
import { SYSTEM_PYTHON } from "../test/helpers/processes";
import { embeddedAgentEnv, median, option, runBench, runDriver, withFarlab } from "./lib";

interface Summary {
  p50_ms: number;
  p95_ms: number;
  n: number;
}

interface Flood {
  megabytes: number;
  cell_s: number;
  iopub_messages: number;
  stream_messages: number;
  stream_chars_delivered: number;
  messages_per_s: number;
  kernel_rss_before_mib: number;
  kernel_peak_growth_mib: number;
  kernel_growth_after_mib: number;
  kernel_process_peak_growth_mib: number;
  executor_peak_growth_mib: number;
  agent_peak_growth_mib: number;
  agent_growth_after_mib: number;
  runtime_peak_growth_mib: number;
  peak_from: string;
}

interface Cold {
  first_output: Summary;
  cell: Summary;
  fresh_first_output_ms: number;
}

interface DriverReport {
  runs: number;
  cold_samples: number;
  cpus: number;
  load_before: string[];
  load_after: string[];
  /** Interleaved cell by cell in the same kernels' lifetime. */
  warm: { px: Summary; remote_ts: Summary; remote_python: Summary; local_ts: Summary };
  cold: { python: Cold; ts: Cold };
  flood: Flood;
  flood_again: Flood;
}

/** Below this many MiB of growth, the kernel side meets the goal for the 100 MB cell. */
const FLOOD_GOAL_MIB = 50;
/** Goal for a warm round trip, as a fraction of %%px at p50. */
const WARM_GOAL_RATIO = 0.5;

const ms = (value: number) => `${value.toFixed(1)} ms`;
const ratio = (a: number, b: number) => (a / b).toFixed(2);

interface AgentOnly {
  ts: Summary;
  python: Summary;
  /** CPU (user + system) per cell of the embedded agent and of its runtimes, over the measured cells. */
  cpuMsPerCell: { ts: { agent: number; runtime: number }; python: { agent: number; runtime: number } };
}

/**
 * CPU ticks (user + system, USER_HZ) of this process's descendants by depth: [children (the
 * agent), grandchildren (its runtimes)]. Read from /proc: less noisy than latency on a shared
 * machine, where a wake-up's wait says more about the neighbours than about the cell.
 */
function descendantTicks(): [number, number] {
  const children = new Map<string, Array<[pid: string, ticks: number]>>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const list = children.get(fields[1]) ?? [];
    list.push([entry, Number(fields[11]) + Number(fields[12])]);
    children.set(fields[1], list);
  }
  const byDepth: [number, number] = [0, 0];
  const walk = (pid: string, depth: number) => {
    for (const [child, ticks] of children.get(pid) ?? []) {
      if (depth < 2) byDepth[depth] += ticks;
      walk(child, depth + 1);
    }
  };
  walk(String(process.pid), 0);
  return byDepth;
}

/** USER_HZ: /proc's CPU ticks per second (100 on Linux). */
const TICK_MS = 10;

function summarize(seconds: number[]): Summary {
  const sorted = [...seconds].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * sorted.length) - 1))];
  return { p50_ms: median(sorted) * 1000, p95_ms: at(95) * 1000, n: sorted.length };
}

/** `1+1` through AgentClient and the embedded agent alone: run request -> done event. */
async function agentOnly(dataDir: string, warmup: number, runs: number): Promise<AgentOnly> {
  const client = new AgentClient(() => spawnEmbeddedAgent(dataDir), { name: "bench", reconnectAttempts: 0 });
  try {
    const once = async (lang: "ts" | "python"): Promise<number> => {
      const started = process.hrtime.bigint();
      const job = await client.run({ session: { lang, resources: {} }, code: "1+1" });
      let result = "";
      for await (const { event } of job) {
        if (event.kind === "result") result = String(event.data["text/plain"]);
        if (event.kind === "done") {
          if (event.status !== "ok" || result !== "2") throw new Error(`agent-only ${lang} 1+1 ended ${event.status} with ${JSON.stringify(result)}`);
          break;
        }
      }
      return Number(process.hrtime.bigint() - started) / 1e9;
    };
    const cpu = { ts: { agent: 0, runtime: 0 }, python: { agent: 0, runtime: 0 } };
    const measure = async (lang: "ts" | "python") => {
      for (let i = 0; i < warmup + 1; i++) await once(lang);
      const times: number[] = [];
      const before = descendantTicks();
      for (let i = 0; i < runs; i++) times.push(await once(lang));
      const after = descendantTicks();
      cpu[lang] = { agent: ((after[0] - before[0]) * TICK_MS) / runs, runtime: ((after[1] - before[1]) * TICK_MS) / runs };
      return summarize(times);
    };
    return { ts: await measure("ts"), python: await measure("python"), cpuMsPerCell: cpu };
  } finally {
    client.close();
  }
}

function table(report: DriverReport, agent: AgentOnly): string {
  const { px, remote_ts: ts, remote_python: py, local_ts: local } = report.warm;
  const { python: coldPy, ts: coldTs } = report.cold;
  const flood = report.flood;
  const warmRow = (label: string, s: Summary) =>
    `| ${label} | ${ms(s.p50_ms)} | ${ms(s.p95_ms)} | ${ratio(s.p50_ms, px.p50_ms)} | ${ratio(s.p95_ms, px.p95_ms)} | ${
      s.p50_ms / px.p50_ms <= WARM_GOAL_RATIO ? "met" : "missed"
    } |`;
  const coldRow = (label: string, c: Cold) =>
    `| ${label} | ${ms(c.first_output.p50_ms)} | ${ms(c.first_output.p95_ms)} | ${ms(c.cell.p50_ms)} | ${ms(c.fresh_first_output_ms)} | ${ratio(
      c.first_output.p50_ms,
      px.p50_ms,
    )} |`;
  return [
    `warm round trip, execute_request -> idle (${report.runs} cells each, interleaved cell by cell, after warm-up)`,
    "",
    "| cell | p50 | p95 | p50 / %%px | p95 / %%px | goal <= 0.5x at p50 |",
    "|---|---:|---:|---:|---:|---|",
    `| ipykernel + ipyparallel \`%%px --block 1+1\`, 1 local engine | ${ms(px.p50_ms)} | ${ms(px.p95_ms)} | 1.00 | 1.00 | baseline |`,
    warmRow("farlab `%%remote lang=ts 1+1`", ts),
    warmRow("farlab `%%remote lang=python 1+1`", py),
    `| (layer) farlab local TypeScript \`1+1\`, no agent | ${ms(local.p50_ms)} | ${ms(local.p95_ms)} | ${ratio(local.p50_ms, px.p50_ms)} | | |`,
    `| (layer) agent alone, ts: AgentClient run -> done, no kernel (measured after, not interleaved) | ${ms(agent.ts.p50_ms)} | ${ms(agent.ts.p95_ms)} | ${ratio(agent.ts.p50_ms, px.p50_ms)} | | |`,
    `| (layer) agent alone, python | ${ms(agent.python.p50_ms)} | ${ms(agent.python.p95_ms)} | ${ratio(agent.python.p50_ms, px.p50_ms)} | | |`,
    `| (layer) agent alone, CPU per cell: agent + runtime, ts | ${ms(agent.cpuMsPerCell.ts.agent)} + ${ms(agent.cpuMsPerCell.ts.runtime)} | | | | |`,
    `| (layer) agent alone, CPU per cell: agent + runtime, python | ${ms(agent.cpuMsPerCell.python.agent)} + ${ms(agent.cpuMsPerCell.python.runtime)} | | | | |`,
    "",
    `cold session start, execute_request -> first stream message (${report.cold_samples} new named sessions each)`,
    "",
    "| runtime | first output p50 | p95 | whole cell p50 | `--fresh` first output | first output p50 / warm %%px |",
    "|---|---:|---:|---:|---:|---:|",
    coldRow("python", coldPy),
    coldRow("ts", coldTs),
    "",
    `a Python cell printing ${flood.megabytes} MB (1 MB writes of 100-byte lines)`,
    "",
    "| measure | value | goal | value / goal |",
    "|---|---:|---:|---:|",
    `| kernel + executor RSS, peak growth | ${flood.kernel_peak_growth_mib.toFixed(1)} MiB | <= ${FLOOD_GOAL_MIB} MiB | ${ratio(
      flood.kernel_peak_growth_mib,
      FLOOD_GOAL_MIB,
    )} |`,
    `| of which: kernel process ${flood.kernel_process_peak_growth_mib.toFixed(1)} MiB, executor child ${flood.executor_peak_growth_mib.toFixed(1)} MiB (peaks) | | | |`,
    `| kernel + executor RSS, growth left after the cell | ${flood.kernel_growth_after_mib.toFixed(1)} MiB | | |`,
    `| the same cell again: kernel + executor RSS, peak growth over the first | ${report.flood_again.kernel_peak_growth_mib.toFixed(1)} MiB | <= ${FLOOD_GOAL_MIB} MiB | ${ratio(
      report.flood_again.kernel_peak_growth_mib,
      FLOOD_GOAL_MIB,
    )} |`,
    `| embedded agent RSS, peak growth (not the kernel's) | ${flood.agent_peak_growth_mib.toFixed(1)} MiB | | |`,
    `| embedded agent RSS, growth left after the cell | ${flood.agent_growth_after_mib.toFixed(1)} MiB | | |`,
    `| the same cell again: embedded agent RSS, peak growth over the first | ${report.flood_again.agent_peak_growth_mib.toFixed(1)} MiB | | |`,
    `| python runtime RSS, peak growth | ${flood.runtime_peak_growth_mib.toFixed(1)} MiB | | |`,
    `| whole cell | ${flood.cell_s.toFixed(2)} s | | |`,
    `| iopub messages (stream ${flood.stream_messages}) | ${flood.iopub_messages} | | |`,
    `| iopub messages per second | ${flood.messages_per_s.toFixed(1)} | | |`,
    `| stream text delivered to the notebook | ${(flood.stream_chars_delivered / 1024 / 1024).toFixed(2)} MiB of ${flood.megabytes} MB | cap 1 MiB | |`,
    "",
    `peak RSS from: ${flood.peak_from}; kernel + executor RSS before the cell: ${flood.kernel_rss_before_mib.toFixed(1)} MiB`,
    `machine: ${report.cpus} CPUs, load average ${report.load_before.join(" ")} before, ${report.load_after.join(" ")} after`,
  ].join("\n");
}

async function main(): Promise<void> {
  await withFarlab("bench-remote", async (spec) => {
    const args = ["--runs", option("runs", "50"), "--warmup", option("warmup", "5"), "--cold", option("cold", "3"), "--flood-mb", option("flood-mb", "100")];
    const report = await runDriver<DriverReport>(spec, "remote_cell_driver.py", args, { env: embeddedAgentEnv(spec), timeoutMs: 30 * 60_000 });
    process.env.FARLAB_PYTHON = SYSTEM_PYTHON; // the agent-only layer's embedded agent inherits it
    const agentDir = path.join(spec.prefix, "agent-only");
    fs.mkdirSync(agentDir, { recursive: true });
    // More cells than the kernel layers: /proc counts CPU in 10 ms ticks.
    const agent = await agentOnly(agentDir, Number(option("warmup", "5")), Number(option("agent-runs", "300")));
    console.log(table(report, agent));
    console.log(`\nraw: ${JSON.stringify({ ...report, agentOnly: agent })}`);
  });
}

runBench(main);
