/**
 * Benchmark: `%volume put` / `%volume get` of one large file (default 1 GiB) through a real farlab
 * kernel (Debian's jupyter_client, bench/transfer_kernel_driver.py) whose agent is reached over SSH
 * (a real sshd on a loopback port, test/helpers/sshd.ts), against `scp` of the same file in the
 * same run, alternating; and the RSS of the executor (where %volume runs) during each transfer,
 * above its idle RSS once connected. bench/transfer.ts measures the same transfer code in one
 * process, with CPU per party and small files; this one is the whole path a notebook takes:
 * magic, progress bar, kernel, executor.
 *
 *   npx tsc -p . && node dist/bench/transfer-kernel.js [--mib 1024] [--rounds 3]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Sshd } from "../test/helpers/sshd";
import { REPO_ROOT } from "../test/helpers/repo";
import { median, option, runBench, runDriver, withFarlab } from "./lib";

interface Round {
  put_s: number;
  scp_up_s: number;
  get_s: number;
  scp_down_s: number;
  put_peak_mib: number;
  get_peak_mib: number;
}

interface DriverReport {
  mib: number;
  executor_idle_mib: number;
  load: number;
  rounds: Round[];
}

function table(report: DriverReport): string {
  const rate = (seconds: number) => (report.mib / seconds).toFixed(1);
  const row = (what: string, farlab: (r: Round) => number, scp: (r: Round) => number, peak: (r: Round) => number) => {
    const f = median(report.rounds.map(farlab));
    const s = median(report.rounds.map(scp));
    const ratios = report.rounds.map((r) => scp(r) / farlab(r));
    const extra = Math.max(...report.rounds.map(peak)) - report.executor_idle_mib;
    return `| ${what} | ${rate(f)} | ${rate(s)} | ${(s / f).toFixed(2)}x | ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x | +${extra.toFixed(0)} MiB |`;
  };
  return [
    `%volume through a farlab kernel over SSH, ${report.mib} MiB, medians of ${report.rounds.length} rounds (load ${report.load.toFixed(1)} at the end; executor idle ${report.executor_idle_mib.toFixed(0)} MiB)`,
    "| transfer | farlab MiB/s | scp MiB/s | farlab/scp | rounds' ratios | executor RSS, highest peak above idle |",
    "|---|---:|---:|---:|---:|---:|",
    row("put (up)", (r) => r.put_s, (r) => r.scp_up_s, (r) => r.put_peak_mib),
    row("get (down)", (r) => r.get_s, (r) => r.scp_down_s, (r) => r.get_peak_mib),
  ].join("\n");
}

async function main(): Promise<void> {
  const sshd = await Sshd.start();
  // The kernel's SSH client reads ~/.ssh (key, known_hosts) through $HOME: a home of its own.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-bench-transfer-kernel-home-"));
  try {
    fs.mkdirSync(path.join(home, ".ssh"), { mode: 0o700 });
    fs.copyFileSync(sshd.clientKeyFile, path.join(home, ".ssh", "id_ed25519"));
    fs.chmodSync(path.join(home, ".ssh", "id_ed25519"), 0o600);
    fs.writeFileSync(path.join(home, ".ssh", "known_hosts"), `${sshd.knownHostsLine()}\n`);
    // The agent's data under the same temporary home (HOME on its side too), process backend.
    const agent = `env HOME=${path.join(home, "agent")} FARLAB_AGENT_BACKEND=process ${process.execPath} ${path.join(REPO_ROOT, "dist", "remote-agent", "cli.js")}`;
    const args = ["--host", sshd.host, "--port", String(sshd.port), "--user", sshd.user, "--key", sshd.clientKeyFile, "--agent", agent];
    args.push("--mib", option("mib", "1024"), "--rounds", option("rounds", "3"));
    const report = await withFarlab("bench-transfer-kernel", (spec) =>
      runDriver<DriverReport>(spec, "transfer_kernel_driver.py", args, { env: { HOME: home }, timeoutMs: 1_800_000 }),
    );
    console.log(table(report));
    console.log(`\nraw: ${JSON.stringify(report)}`);
  } finally {
    await sshd.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

runBench(main);
