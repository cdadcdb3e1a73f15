/**
 * Installs the farlab kernelspec where Jupyter looks for kernels:
 *   --user (default)  the Jupyter data dir of this user (~/.local/share/jupyter on Linux)
 *   --sys-prefix      the active Python environment (VIRTUAL_ENV, CONDA_PREFIX, or python3's sys.prefix)
 *   --prefix DIR      DIR/share/jupyter
 * The kernelspec runs this installation's node and dist/kernel/main.js by absolute path, so it
 * keeps working whatever PATH the frontend has.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, platform } from "node:os";
import { join, resolve } from "node:path";

export const KERNEL_NAME = "farlab";
export const DISPLAY_NAME = "TypeScript (farlab)";

export type InstallTarget = { kind: "user" } | { kind: "sys-prefix" } | { kind: "prefix"; dir: string };

export class InstallError extends Error {
  override name = "InstallError";
}

/** jupyter_core's jupyter_data_dir(). */
export function jupyterUserDataDir(): string {
  if (process.env.JUPYTER_DATA_DIR) return resolve(process.env.JUPYTER_DATA_DIR);
  const home = homedir();
  if (platform() === "darwin") return join(home, "Library", "Jupyter");
  if (platform() === "win32") return join(process.env.APPDATA ?? join(home, "AppData", "Roaming"), "jupyter");
  return join(process.env.XDG_DATA_HOME || join(home, ".local", "share"), "jupyter");
}

/** The prefix of the Python environment a user means by --sys-prefix. */
function pythonSysPrefix(): string {
  const active = process.env.VIRTUAL_ENV || process.env.CONDA_PREFIX;
  if (active) return active;
  for (const python of ["python3", "python"]) {
    try {
      return execFileSync(python, ["-c", "import sys; print(sys.prefix)"], { encoding: "utf8" }).trim();
    } catch {
      // try the next name
    }
  }
  throw new InstallError("--sys-prefix needs an active Python environment (VIRTUAL_ENV, CONDA_PREFIX or python3 on PATH); use --user or --prefix DIR instead");
}

export function kernelsDir(target: InstallTarget): string {
  switch (target.kind) {
    case "user":
      return join(jupyterUserDataDir(), "kernels");
    case "sys-prefix":
      return join(pythonSysPrefix(), "share", "jupyter", "kernels");
    case "prefix":
      return join(resolve(target.dir), "share", "jupyter", "kernels");
  }
}

export function kernelSpec(): Record<string, unknown> {
  const version = (JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string }).version;
  return {
    argv: [process.execPath, join(__dirname, "main.js"), "{connection_file}"],
    display_name: DISPLAY_NAME,
    language: "typescript",
    interrupt_mode: "signal",
    metadata: { farlab: { version }, debugger: false },
  };
}

const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
<rect width="64" height="64" rx="8" fill="#3178c6"/>
<text x="32" y="42" font-family="Helvetica, Arial, sans-serif" font-size="26" font-weight="bold" fill="#fff" text-anchor="middle">far</text>
</svg>
`;

/** Writes KERNELS_DIR/farlab/kernel.json (and a logo); returns the kernelspec folder. */
export function installKernelSpec(target: InstallTarget): string {
  const dir = join(kernelsDir(target), KERNEL_NAME);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "kernel.json"), JSON.stringify(kernelSpec(), null, 2) + "\n");
  writeFileSync(join(dir, "logo-svg.svg"), LOGO_SVG);
  return dir;
}
