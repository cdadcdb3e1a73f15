// Builds what the agent brings into a session (dist/runtimes/): the Node runner as ONE file with
// typescript inside (the Docker backend bind-mounts only the node binary and this folder into
// arbitrary images, so nothing may come from node_modules at run time), and the Python runner.
const esbuild = require("esbuild");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const outDir = path.join(root, "dist", "runtimes");
// Built beside outDir, then moved in file by file (rename is atomic): a session starting during
// a rebuild bind-mounts outDir and must never find it empty or a runner half written.
const stageDir = `${outDir}.build-${process.pid}`;
const started = Date.now();

fs.rmSync(stageDir, { recursive: true, force: true });
fs.mkdirSync(stageDir, { recursive: true });

esbuild.buildSync({
  entryPoints: [path.join(root, "remote-agent", "runtimes", "node", "runner.ts")],
  outfile: path.join(stageDir, "node-runner.js"),
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});

const pythonSource = path.join(root, "remote-agent", "runtimes", "python");
fs.cpSync(pythonSource, path.join(stageDir, "python"), {
  recursive: true,
  filter: (source) => !source.includes("__pycache__") && !source.endsWith(".pyc"),
});

/** Relative paths of the files under dir. */
function filesUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).filter((name) => fs.statSync(path.join(dir, name)).isFile());
}

const built = new Set(filesUnder(stageDir));
for (const name of built) {
  fs.mkdirSync(path.dirname(path.join(outDir, name)), { recursive: true });
  fs.renameSync(path.join(stageDir, name), path.join(outDir, name));
}
// Files of an earlier build that this one no longer has (caches written at run time included).
for (const name of filesUnder(outDir)) if (!built.has(name)) fs.rmSync(path.join(outDir, name), { force: true });
fs.rmSync(stageDir, { recursive: true, force: true });

console.log(`bundle-runtimes: dist/runtimes built in ${Date.now() - started} ms`);
