/**
 * Kernelspecs in a throwaway prefix, so tests never touch the user's Jupyter setup: farlab's
 * through its own `farlab install --prefix`, tslab's (the benchmark baseline) through tslab's CLI.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FARLAB_CLI, REPO_ROOT } from "./repo";
import { SYSTEM_PYTHON, describeRun, runProgram } from "./processes";

export interface KernelspecPrefix {
  prefix: string;
  /** `<prefix>/share/jupyter`, for JUPYTER_PATH. */
  jupyterPath: string;
  /** process.env plus JUPYTER_PATH, a private runtime dir (connection files) and history dir. */
  env: NodeJS.ProcessEnv;
  remove(): void;
}

export function makePrefix(label: string): KernelspecPrefix {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), `farlab-${label}-`));
  const jupyterPath = path.join(prefix, "share", "jupyter");
  const runtimeDir = path.join(prefix, "runtime");
  fs.mkdirSync(runtimeDir, { recursive: true });
  return {
    prefix,
    jupyterPath,
    env: {
      // The embedded agent's backend: process unless a test asks (with dockerd up, auto = docker).
      FARLAB_AGENT_BACKEND: "process",
      ...process.env,
      JUPYTER_PATH: jupyterPath,
      JUPYTER_RUNTIME_DIR: runtimeDir,
      // farlab keeps input history across kernels; tests keep theirs away from the user's.
      FARLAB_HISTORY_DIR: path.join(prefix, "history"),
      PYTHONUNBUFFERED: "1",
    },
    remove: () => fs.rmSync(prefix, { recursive: true, force: true }),
  };
}

export function kernelDir(spec: KernelspecPrefix, name: string): string {
  return path.join(spec.jupyterPath, "kernels", name);
}

/** `farlab install --prefix` into a fresh prefix; throws with the CLI's output if it fails. */
export async function installFarlab(label = "kernel"): Promise<KernelspecPrefix> {
  const spec = makePrefix(label);
  const result = await runProgram(process.execPath, [FARLAB_CLI, "install", "--prefix", spec.prefix], { timeoutMs: 60_000 });
  const kernelJson = path.join(kernelDir(spec, "farlab"), "kernel.json");
  if (result.code !== 0 || !fs.existsSync(kernelJson)) {
    spec.remove();
    throw new Error(`farlab install did not write ${kernelJson}\n${describeRun("farlab install", result)}`);
  }
  return spec;
}

/** tslab's own installer (tslab install --prefix), pointed at the pinned tslab in node_modules. */
export async function installTslab(spec: KernelspecPrefix): Promise<void> {
  const tslabBin = path.join(REPO_ROOT, "node_modules", "tslab", "bin", "tslab");
  const result = await runProgram(
    process.execPath,
    [tslabBin, "install", "--python", SYSTEM_PYTHON, "--binary", tslabBin, "--prefix", spec.prefix],
    { timeoutMs: 60_000 },
  );
  if (result.code !== 0 || !fs.existsSync(path.join(kernelDir(spec, "tslab"), "kernel.json"))) {
    throw new Error(`tslab install failed\n${describeRun("tslab install", result)}`);
  }
}
