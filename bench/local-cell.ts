/**
 * Benchmark: a trivial local cell, kernel start-up and idle memory, farlab against tslab 1.0.22
 * (the real tslab kernel, installed with tslab's own installer), measured in the same run through
 * the same client (bench/local_cell_driver.py on Debian's jupyter_client).
 *
 *   npm run bench:local-cell            (after npx tsc -p .)
 *   node dist/bench/local-cell.js --runs 200 --starts 5
 *   node dist/bench/local-cell.js --code 'let x = 1; x'     (another cell; default `1+1`)
 */
import { installTslab } from "../test/helpers/kernelspec";
import { option, runBench, runDriver, withFarlab } from "./lib";

interface KernelNumbers {
  cell_median_ms: number;
  cell_p95_ms: number;
  start_median_ms: number;
  start_all_ms: number[];
  first_cell_median_ms: number;
  idle_rss_mib: number;
  processes: number;
  /** Batches discarded because the kernel stopped answering (redone in a fresh kernel). */
  stalled_batches: number;
  stalled_starts: number;
}

interface DriverReport {
  code: string;
  runs: number;
  warmup: number;
  batch: number;
  kernels: Record<string, KernelNumbers>;
}

function table(report: DriverReport): string {
  const farlab = report.kernels.farlab;
  const tslab = report.kernels.tslab;
  const rows: Array<[string, (k: KernelNumbers) => number, string]> = [
    [`cell \`${report.code}\` median`, (k) => k.cell_median_ms, "ms"],
    [`cell \`${report.code}\` p95`, (k) => k.cell_p95_ms, "ms"],
    ["start -> kernel_info_reply (median)", (k) => k.start_median_ms, "ms"],
    [`start -> first \`${report.code}\` done (median)`, (k) => k.first_cell_median_ms, "ms"],
    ["idle RSS, whole process tree", (k) => k.idle_rss_mib, "MiB"],
  ];
  const lines = [
    "| measure | farlab | tslab 1.0.22 | farlab/tslab |",
    "|---|---:|---:|---:|",
    ...rows.map(([label, pick, unit]) => {
      const f = pick(farlab);
      const t = pick(tslab);
      return `| ${label} | ${f.toFixed(1)} ${unit} | ${t.toFixed(1)} ${unit} | ${(f / t).toFixed(2)} |`;
    }),
    `| processes in the kernel tree | ${farlab.processes} | ${tslab.processes} | |`,
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const runs = option("runs", "200");
  const starts = option("starts", "5");
  const code = option("code", "1+1");
  await withFarlab("bench", async (spec) => {
    await installTslab(spec);
    const report = await runDriver<DriverReport>(spec, "local_cell_driver.py", ["--kernels", "farlab,tslab", "--runs", runs, "--starts", starts, "--code", code], {
      timeoutMs: 30 * 60_000,
    });
    console.log(
      `local cell benchmark: ${report.runs} timed cells per kernel, in kernels of ${report.batch} timed cells ` +
        `after ${report.warmup} warm-up cells each; ${starts} starts per kernel; idle RSS after the first batch`,
    );
    console.log(table(report));
    console.log(`start-up samples (ms): farlab ${fmt(report.kernels.farlab.start_all_ms)}; tslab ${fmt(report.kernels.tslab.start_all_ms)}`);
    console.log(`stalled batches, discarded and redone: farlab ${report.kernels.farlab.stalled_batches}; tslab ${report.kernels.tslab.stalled_batches}`);
    console.log(`stalled first cells of a new kernel, redone: farlab ${report.kernels.farlab.stalled_starts}; tslab ${report.kernels.tslab.stalled_starts}`);
  });
}

function fmt(values: number[]): string {
  return values.map((v) => v.toFixed(0)).join(", ");
}

runBench(main);
