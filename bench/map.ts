/**
 * Benchmark: %map against ipyparallel 7.1 (Debian's), in one run (bench/map_driver.py on
 * Debian's jupyter_client):
 * - 10,000 trivial inputs, farlab on 2 workers with no batch setting, against
 *   LoadBalancedView.map on 2 engines, unchunked and with chunksize=100 (throughput ratios);
 * - 100 inputs of 50 ms on 4 workers against the ideal 100 * 50 ms / 4 = 1.25 s.
 *
 *   npx tsc -p . && node scripts/bundle-runtimes.js && node dist/bench/map.js --runs 3
 */
import { embeddedAgentEnv, median, option, runBench, runDriver, withFarlab } from "./lib";

interface DriverReport {
  runs: number;
  n_trivial: number;
  n_slow: number;
  ipyparallel: { unchunked_s: number[]; chunked_s: number[] };
  farlab: { trivial_s: number[]; trivial_o_s: number[]; slow_s: number[]; slow_o_s: number[] };
}

function table(report: DriverReport): string {
  const rate = (seconds: number) => report.n_trivial / seconds;
  const farlab = rate(median(report.farlab.trivial_s));
  const farlabO = rate(median(report.farlab.trivial_o_s));
  const slowO = median(report.farlab.slow_o_s);
  const unchunked = rate(median(report.ipyparallel.unchunked_s));
  const chunked = rate(median(report.ipyparallel.chunked_s));
  const slow = median(report.farlab.slow_s);
  const ideal = (report.n_slow * 0.05) / 4;
  return [
    `| ${report.n_trivial} trivial inputs, 2 workers / engines | inputs/s (median of ${report.runs}) | farlab (first row) / this |`,
    "|---|---:|---:|",
    `| farlab %map (adaptive batches), whole cell | ${farlab.toFixed(0)} | 1.00 |`,
    `| farlab %map ... -o r (plus the local assignment) | ${farlabO.toFixed(0)} | ${(farlab / farlabO).toFixed(2)} |`,
    `| ipyparallel LoadBalancedView.map, unchunked (1 run) | ${unchunked.toFixed(0)} | ${(farlab / unchunked).toFixed(2)} |`,
    `| ipyparallel LoadBalancedView.map, chunksize=100 | ${chunked.toFixed(0)} | ${(farlab / chunked).toFixed(2)} |`,
    "",
    `| ${report.n_slow} inputs of 50 ms, 4 workers | wall time (median) | / ideal ${ideal.toFixed(2)} s |`,
    "|---|---:|---:|",
    `| farlab %map, whole cell | ${slow.toFixed(3)} s | ${(slow / ideal).toFixed(2)} |`,
    `| farlab %map ... -o s (plus the local assignment) | ${slowO.toFixed(3)} s | ${(slowO / ideal).toFixed(2)} |`,
  ].join("\n");
}

async function main(): Promise<void> {
  const runs = option("runs", "3");
  const report = await withFarlab("bench-map", (spec) =>
    runDriver<DriverReport>(spec, "map_driver.py", ["--runs", runs], { env: embeddedAgentEnv(spec), timeoutMs: 900_000 }),
  );
  console.log(table(report));
  console.log(`\nraw: ${JSON.stringify(report)}`);
}

runBench(main);
