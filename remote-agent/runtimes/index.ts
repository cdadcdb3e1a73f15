/**
 * How to start a session's runtime. The agent's backends call runtimeCommand(lang) and run the
 * result with FARLAB_CHANNEL set (see remote-agent/protocol/runner.ts); the Docker backend
 * bind-mounts RUNTIMES_DIR (read-only) and asks for paths inside the container instead.
 *
 * Layout of the built folder (scripts/bundle-runtimes.js, run by `npm run build`):
 *   dist/runtimes/node-runner.js           TypeScript/JavaScript cells (--lang ts), bash cells (--lang sh)
 *   dist/runtimes/python/farlab_runner.py  Python cells (stdlib only, python3 >= 3.8)
 */
import * as fs from "node:fs";
import * as path from "node:path";

export type RuntimeLang = "ts" | "python" | "sh";

export interface RuntimeCommand {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

export interface RuntimeCommandOptions {
  /** Where the runtimes folder is as the runtime sees it (a container's mount point). */
  runtimesDir?: string;
  /** The node binary for ts and sh (default: this process's, process.execPath). */
  node?: string;
  /** The Python interpreter (default: $FARLAB_PYTHON, else `python3` from PATH). */
  python?: string;
}

/** The farlab package folder above `start` (tsc may copy package.json into dist/: skip that). */
function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (path.basename(dir) !== "dist" && fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === "farlab") {
      return dir;
    }
    if (path.dirname(dir) === dir) throw new Error(`farlab: no farlab package.json above ${start}`);
  }
}

/** The built runtimes folder on this machine (works from dist/ and from sources run by tsx). */
export const RUNTIMES_DIR = path.join(findPackageRoot(__dirname), "dist", "runtimes");
export const NODE_RUNNER = "node-runner.js";
export const PYTHON_RUNNER = path.join("python", "farlab_runner.py");

export function runtimeCommand(lang: RuntimeLang, options: RuntimeCommandOptions = {}): RuntimeCommand {
  const dir = options.runtimesDir ?? RUNTIMES_DIR;
  const join = options.runtimesDir ? path.posix.join : path.join;
  switch (lang) {
    case "ts":
    case "sh":
      return { command: options.node ?? process.execPath, args: [join(dir, NODE_RUNNER), "--lang", lang] };
    case "python":
      return {
        command: options.python ?? process.env.FARLAB_PYTHON ?? "python3",
        // -u: fd 1/2 unbuffered, so output of print() from a C extension reaches the agent at once.
        args: ["-u", join(dir, PYTHON_RUNNER)],
        env: { PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8" },
      };
    default:
      throw new Error(`farlab: no runtime for lang ${JSON.stringify(lang)}; accepted: ts, python, sh`);
  }
}

/** A clear error when the runtimes were not built (the agent reports it instead of a bare ENOENT). */
export function checkRuntimesBuilt(dir: string = RUNTIMES_DIR): void {
  for (const file of [NODE_RUNNER, PYTHON_RUNNER]) {
    if (!fs.existsSync(path.join(dir, file))) {
      throw new Error(`farlab: the runtime ${path.join(dir, file)} is missing; run \`npm run build\` (scripts/bundle-runtimes.js)`);
    }
  }
}
