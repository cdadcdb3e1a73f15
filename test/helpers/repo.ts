/** Where the farlab checkout is, whether this file runs from test/helpers (tsx) or dist/test/helpers. */
import * as fs from "node:fs";
import * as path from "node:path";

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === "farlab") return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no farlab package.json above ${start}`);
    dir = parent;
  }
}

export const REPO_ROOT = findRepoRoot(__dirname);
/** The built farlab CLI (tests run after `npx tsc -p .`). */
export const FARLAB_CLI = path.join(REPO_ROOT, "dist", "cli", "farlab.js");
/** Python tests and drivers live in the source tree; tsc does not copy them. */
export const PYTHON_TEST_DIR = path.join(REPO_ROOT, "test", "python");
