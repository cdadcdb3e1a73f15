/**
 * The GPU machine's half of scripts/device-check (docs/device-check.md), bundled by
 * scripts/bundle-agent.js into .device/farlab/device-driver.js and run by the carried node.
 *
 * It runs real `%%remote` cells the way the kernel does: the magic router, the `%%remote` handler,
 * its AgentClient and JobRenderer (extension/), and the kernel's display API over a sink that
 * records the Jupyter messages a notebook would get. Only the agent's connector differs from the
 * kernel's: the carried agent bundle, started as `serve --stdio` (the embedded agent's transport).
 *
 * Checks: a `%%remote gpu=any lang=python` cell multiplies matrices with torch on the GPU, prints
 * the device's name, draws a matplotlib figure (a PNG display) and two progress bars (farlab's,
 * and tqdm's "\r" lines); the cell saw exactly the GPU the agent allocated to it
 * (CUDA_VISIBLE_DEVICES, torch.cuda.device_count() == 1, the same name); `gpu=A100` (absent
 * there) and `gpu=any:N+1` are usage errors that list the GPUs the agent has.
 *
 * Prints the checks as text on stderr and one JSON summary on stdout; exit status 1 if any failed.
 * `--dry-run` (development machines: a stand-in nvidia-smi, no torch) lets the torch part of the
 * cell report "torch not available" and marks the torch checks skipped; without it, a missing
 * torch fails the cell and the check.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inspect } from "node:util";
import { createDisplayApi } from "../kernel/display";
import type { DisplayMessage } from "../kernel/display/types";
import { MagicRegistry } from "../extension/magics/registry";
import { createMagicRouter } from "../extension/magics/router";
import type { MagicContext } from "../extension/magics/types";
import { AgentRegistry } from "../extension/remote/agents";
import { createRemoteCellMagic } from "../extension/remote/remote-magic";
import { RemoteDefaults } from "../extension/remote/remote-options";
import type { GpuInfo } from "../remote-agent/protocol/messages";
import { StreamTransport, type Transport } from "../remote-agent/protocol/framing";

interface Options {
  agent: string;
  dataDir: string;
  dryRun: boolean;
  /** A GPU name the machine does not have (the brief's `gpu=A100`), unless the machine has one. */
  absentGpu: string;
  deadlineS: number;
}

type Recorded = DisplayMessage | { msgType: "stream"; content: { name: string; text: string } };

interface CellRecord {
  code: string;
  seconds: number;
  messages: Recorded[];
  value?: unknown;
  error?: { ename: string; evalue: string };
}

interface Check {
  name: string;
  status: "ok" | "failed" | "skipped";
  detail: string;
}

const SESSION = "device-check";
const PROGRESS_STEPS = 20;
/** The GPU cell's own limit (first `import torch` and CUDA start-up included). */
const CELL_TIMEOUT_S = 180;
/** The whole check; below the device tool's timeout_s (docs: 300), so the summary still comes back. */
const DEFAULT_DEADLINE_S = 240;

function parseArgs(argv: string[]): Options {
  const value = (name: string) => {
    const index = argv.indexOf(`--${name}`);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const agent = value("agent");
  if (!agent) throw new Error("usage: device-driver.js --agent AGENT.js [--data-dir DIR] [--dry-run] [--absent-gpu NAME] [--deadline-s 240]");
  return {
    agent: path.resolve(agent),
    dataDir: path.resolve(value("data-dir") ?? fs.mkdtempSync(path.join(os.tmpdir(), "farlab-device-agent-"))),
    dryRun: argv.includes("--dry-run"),
    absentGpu: value("absent-gpu") ?? "A100",
    deadlineS: Number(value("deadline-s") ?? DEFAULT_DEADLINE_S),
  };
}

// ---- the agent: the carried bundle over stdio ---------------------------------------------------

interface StartedAgent {
  connect(): Promise<Transport>;
  /** Resolves with how the agent process ended (bounded by the caller). */
  exited: Promise<string>;
  stderrTail(): string;
  kill(): void;
}

function agentOverStdio(options: Options): StartedAgent {
  let tail = "";
  let child: ReturnType<typeof spawn> | undefined;
  let resolveExit: (how: string) => void = () => undefined;
  const exited = new Promise<string>((resolve) => (resolveExit = resolve));
  return {
    async connect() {
      if (child) throw new Error("the device check's agent went away (it is not restarted)");
      child = spawn(process.execPath, [options.agent, "serve", "--stdio", "--data-dir", options.dataDir], {
        stdio: ["pipe", "pipe", "pipe"],
        env: process.env,
      });
      child.stderr!.setEncoding("utf8").on("data", (text: string) => (tail = (tail + text).slice(-4000)));
      child.once("exit", (code, signal) => resolveExit(signal ? `signal ${signal}` : `exit status ${code}`));
      await new Promise<void>((resolve, reject) => {
        child!.once("spawn", resolve);
        child!.once("error", reject);
      });
      return new StreamTransport(child.stdout!, child.stdin!);
    },
    exited,
    stderrTail: () => tail,
    kill: () => child?.kill("SIGKILL"),
  };
}

// ---- cells through the %%remote magic ------------------------------------------------------------

class Notebook {
  readonly agents: AgentRegistry;
  private readonly router;
  private readonly locals = new Map<string, unknown>();

  constructor(agent: StartedAgent, configDir: string) {
    this.agents = new AgentRegistry({ local: () => agent.connect(), configFile: path.join(configDir, "agents.json"), reconnectAttempts: 0 });
    const magics = new MagicRegistry();
    magics.register(createRemoteCellMagic(this.agents, new RemoteDefaults()));
    this.router = createMagicRouter(magics);
  }

  set(name: string, value: unknown): void {
    this.locals.set(name, value);
  }

  get(name: string): unknown {
    return this.locals.get(name);
  }

  async run(code: string): Promise<CellRecord> {
    const messages: Recorded[] = [];
    const ctx: MagicContext = {
      display: createDisplayApi({ publish: (message) => messages.push(message) }),
      stream: (name, text) => messages.push({ msgType: "stream", content: { name, text } }),
      input: async () => {
        throw new Error("the device check asks for no input");
      },
      locals: {
        has: (name) => this.locals.has(name),
        get: (name) => this.locals.get(name),
        set: async (name, value) => void this.locals.set(name, value),
        evaluate: async (expression) => {
          throw new Error(`the device check evaluates no TypeScript (${expression})`);
        },
      },
      signal: new AbortController().signal,
    };
    const started = Date.now();
    const record: CellRecord = { code, seconds: 0, messages };
    try {
      const result = await this.router.run(code, ctx, async () => {
        throw new Error("the device check runs no local TypeScript");
      });
      record.value = result?.value;
    } catch (error) {
      const e = error as Error & { ename?: string };
      record.error = { ename: e.ename ?? e.name, evalue: e.message };
    }
    record.seconds = (Date.now() - started) / 1000;
    return record;
  }
}

// ---- the cells ------------------------------------------------------------------------------------

/** The GPU cell's body: every fact the checks need ends up in the JSON value (-o gpu_report). */
const GPU_CELL = `%%remote gpu=any lang=python session=${SESSION} timeout=${CELL_TIMEOUT_S} -i dry_run -o gpu_report
import os, sys, time
from farlab import progress
report = {"python": sys.executable, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "torch": None}
print("CUDA_VISIBLE_DEVICES=%s" % report["visible"])
try:
    import torch
except ImportError as error:
    if not dry_run:
        raise
    print("torch not available (dry run): GPU matmul, device name and device count skipped (%s)" % error)
else:
    report["torch"] = torch.__version__
    report["cuda_available"] = torch.cuda.is_available()
    report["device_count"] = torch.cuda.device_count()
    report["device_name"] = torch.cuda.get_device_name(0)
    print("device_name=%s" % report["device_name"])
    n = 4096
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    c = a @ b
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(10):
        c = a @ b
    torch.cuda.synchronize()
    report["matmul_tflops"] = 10 * 2 * n ** 3 / (time.perf_counter() - started) / 1e12
    reference = a[:64].double() @ b.double()
    report["matmul_rel_err"] = ((c[:64].double() - reference).norm() / reference.norm()).item()
    report["result_device"] = str(c.device)
    print("matmul %dx%d on %s: %.1f TFLOP/s, relative error %.2e" % (n, n, c.device, report["matmul_tflops"], report["matmul_rel_err"]))
for _ in progress(range(${PROGRESS_STEPS}), desc="steps"):
    time.sleep(0.05)
try:
    from tqdm import tqdm
except ImportError:
    report["tqdm"] = False
else:
    report["tqdm"] = True
    for _ in tqdm(range(${PROGRESS_STEPS}), desc="tqdm"):
        time.sleep(0.02)
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(range(10), [x * x for x in range(10)])
ax.set_title(report.get("device_name") or "dry run")
report`;

function absentGpuCell(spec: string, session: string): string {
  return `%%remote gpu=${spec} lang=python session=${session}\n1`;
}

// ---- checks ---------------------------------------------------------------------------------------

function streams(cell: CellRecord, name?: string): string {
  return cell.messages
    .filter((m): m is Extract<Recorded, { msgType: "stream" }> => m.msgType === "stream" && (!name || m.content.name === name))
    .map((m) => m.content.text)
    .join("");
}

function displays(cell: CellRecord): Array<Extract<Recorded, { msgType: "display_data" | "update_display_data" }>> {
  return cell.messages.filter((m): m is Extract<Recorded, { msgType: "display_data" | "update_display_data" }> => m.msgType === "display_data" || m.msgType === "update_display_data");
}

class Checks {
  readonly list: Check[] = [];

  add(name: string, ok: boolean, detail: string): void {
    this.list.push({ name, status: ok ? "ok" : "failed", detail });
  }

  skip(name: string, detail: string): void {
    this.list.push({ name, status: "skipped", detail });
  }

  get failed(): Check[] {
    return this.list.filter((c) => c.status === "failed");
  }
}

function checkGpuCell(checks: Checks, cell: CellRecord, report: Record<string, unknown> | undefined, held: GpuInfo[], options: Options): void {
  checks.add("the gpu=any cell ran without error", !cell.error, cell.error ? `${cell.error.ename}: ${cell.error.evalue}` : `${cell.seconds.toFixed(1)} s`);
  checks.add("the agent allocated exactly one GPU to the session", held.length === 1, held.map((g) => `${g.index}: ${g.name}`).join(", ") || "none");
  if (!report) return;
  const expectedVisible = held.map((g) => String(g.index)).join(",");
  checks.add(
    "CUDA_VISIBLE_DEVICES in the cell is the allocated GPU",
    report.visible === expectedVisible && expectedVisible !== "",
    `cell saw ${JSON.stringify(report.visible)}, agent allocated ${JSON.stringify(expectedVisible)}`,
  );
  checks.add("the cell printed CUDA_VISIBLE_DEVICES live", streams(cell, "stdout").includes(`CUDA_VISIBLE_DEVICES=${report.visible}`), "stdout stream");

  const torchChecks = [
    "torch.cuda.device_count() == 1",
    "torch.cuda.get_device_name(0) is the allocated GPU and was printed",
    "matrix product computed on the GPU, correct against float64",
  ];
  if (report.torch === null) {
    const note = streams(cell, "stdout").match(/torch not available[^\n]*/)?.[0] ?? "torch not available";
    if (!options.dryRun) {
      checks.add("torch is importable", false, note);
      return;
    }
    for (const name of torchChecks) checks.skip(name, `${note} (--dry-run only)`);
  } else {
    const name = String(report.device_name);
    const heldName = held[0]?.name ?? "";
    checks.add(torchChecks[0], report.device_count === 1, `device_count ${report.device_count}, cuda_available ${report.cuda_available}, torch ${report.torch}`);
    checks.add(
      torchChecks[1],
      heldName !== "" && (name.includes(heldName) || heldName.includes(name)) && streams(cell, "stdout").includes(`device_name=${name}`),
      `torch: ${name}; nvidia-smi: ${heldName}`,
    );
    const err = Number(report.matmul_rel_err);
    checks.add(
      torchChecks[2],
      String(report.result_device).startsWith("cuda") && err < 1e-2,
      `${report.result_device}, relative error ${err.toExponential(2)}, ${Number(report.matmul_tflops).toFixed(1)} TFLOP/s (fp32, 4096x4096)`,
    );
  }

  const pngs = displays(cell).filter((m) => m.msgType === "display_data" && typeof m.content.data["image/png"] === "string");
  checks.add(
    "a matplotlib figure arrived as an image/png display",
    pngs.length === 1 && String(pngs[0].content.data["image/png"]).startsWith("iVBORw0KGgo"),
    `${pngs.length} PNG display(s)${pngs[0] ? `, ${String(pngs[0].content.data["image/png"]).length} base64 chars` : ""}`,
  );

  // farlab's progress: one display, updated in place, ending at steps 20/20.
  const bars = displays(cell).filter((m) => String(m.content.data["text/plain"]).startsWith("steps "));
  const barIds = new Set(bars.map((m) => m.content.transient?.display_id));
  const last = bars.length ? String(bars[bars.length - 1].content.data["text/plain"]) : "";
  checks.add(
    "progress() is one bar updated in place, ending complete",
    bars.length >= 2 && barIds.size === 1 && !barIds.has(undefined) && bars[0].msgType === "display_data" && bars.slice(1).every((m) => m.msgType === "update_display_data") && last.includes(`${PROGRESS_STEPS}/${PROGRESS_STEPS}`),
    `${bars.length} messages, last: ${last}`,
  );
  if (report.tqdm) {
    const stderr = streams(cell, "stderr");
    checks.add("tqdm's bar reached the notebook (stderr, \\r lines)", stderr.includes(`${PROGRESS_STEPS}/${PROGRESS_STEPS}`), JSON.stringify(stderr.slice(-120)));
  } else {
    checks.skip("tqdm's bar reached the notebook (stderr, \\r lines)", "tqdm is not installed in this python");
  }
}

function checkUsageError(checks: Checks, label: string, cell: CellRecord, inventory: GpuInfo[]): void {
  const names = [...new Set(inventory.map((g) => g.name))];
  const e = cell.error;
  checks.add(
    `${label} is a MagicUsageError that lists the machine's GPUs`,
    e?.ename === "MagicUsageError" && names.length > 0 && names.every((n) => e.evalue.includes(n)),
    e ? `${e.ename}: ${e.evalue}` : "no error",
  );
}

// ---- main -----------------------------------------------------------------------------------------

/** Prints the checks (stderr) and the summary (stdout); the exit status. */
function finish(checks: Checks, summary: Record<string, unknown>, options: Options): number {
  for (const c of checks.list) process.stderr.write(`${c.status === "ok" ? "ok     " : c.status === "skipped" ? "skipped" : "FAILED "}  ${c.name}: ${c.detail}\n`);
  const failed = checks.failed;
  process.stderr.write(failed.length ? `device check FAILED (${failed.length} of ${checks.list.length} checks)\n` : `device check passed (${checks.list.length} checks${options.dryRun ? ", dry run" : ""})\n`);
  summary.checks = checks.list;
  summary.passed = failed.length === 0;
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return failed.length === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  fs.mkdirSync(options.dataDir, { recursive: true });
  const agent = agentOverStdio(options);
  const notebook = new Notebook(agent, options.dataDir);
  const checks = new Checks();
  const summary: Record<string, unknown> = { dryRun: options.dryRun, node: process.version, dataDir: options.dataDir };
  // A hung agent or cell must not eat the device time silently: report what we have and stop.
  setTimeout(() => {
    checks.add(`the device check finished within ${options.deadlineS} s`, false, "stopped by the deadline");
    summary.agentStderrTail = agent.stderrTail().trim().split("\n").slice(-10);
    agent.kill();
    process.exit(finish(checks, summary, options));
  }, options.deadlineS * 1000).unref();
  try {
    const client = notebook.agents.client("local");
    const initial = await client.request({ type: "status" });
    const inventory = initial.gpus;
    summary.gpus = inventory.map((g) => ({ index: g.index, name: g.name, memoryTotalMiB: g.memoryTotalMiB }));
    checks.add("the agent reads a GPU inventory from nvidia-smi", inventory.length > 0, inventory.map((g) => `${g.index}: ${g.name}`).join(", ") || "no GPUs");

    notebook.set("dry_run", options.dryRun);
    const gpuCell = await notebook.run(GPU_CELL);
    const status = await client.request({ type: "status" });
    const held = status.gpus.filter((g) => g.heldBy === SESSION);
    const report = notebook.get("gpu_report") as Record<string, unknown> | undefined;
    summary.gpuCell = { seconds: gpuCell.seconds, report, error: gpuCell.error, heldBy: status.gpus.map((g) => ({ index: g.index, heldBy: g.heldBy })) };
    checkGpuCell(checks, gpuCell, report, held, options);

    const absent = inventory.some((g) => g.name.toLowerCase().includes(options.absentGpu.toLowerCase()))
      ? undefined
      : options.absentGpu;
    if (absent) {
      const cell = await notebook.run(absentGpuCell(absent, "device-check-absent"));
      checkUsageError(checks, `gpu=${absent}`, cell, inventory);
      summary.absentGpuError = cell.error;
    } else {
      checks.skip(`gpu=${options.absentGpu}`, `this machine has a GPU matching ${options.absentGpu}; pass --absent-gpu NAME`);
    }
    const tooMany = `any:${inventory.length + 1}`;
    const tooManyCell = await notebook.run(absentGpuCell(tooMany, "device-check-too-many"));
    checkUsageError(checks, `gpu=${tooMany}`, tooManyCell, inventory);
    summary.tooManyGpusError = tooManyCell.error;
  } catch (error) {
    checks.add("the device check ran to the end", false, error instanceof Error ? error.message : inspect(error));
  } finally {
    notebook.agents.client("local").close();
    // The agent stops its sessions and exits once its stdin is closed; bounded, then killed.
    const how = await Promise.race([agent.exited, new Promise<string>((resolve) => setTimeout(() => resolve("still running after 20 s"), 20_000).unref())]);
    if (how.startsWith("still")) agent.kill();
    summary.agentExit = how;
    const tail = agent.stderrTail().trim();
    if (tail) summary.agentStderrTail = tail.split("\n").slice(-10);
  }
  return finish(checks, summary, options);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`device check: ${error instanceof Error ? error.message : inspect(error)}\n`);
    process.exit(2);
  },
);
