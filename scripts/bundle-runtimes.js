// Builds what the agent brings into a session (dist/runtimes/): the Node runner as ONE file with
// typescript inside (the Docker backend bind-mounts only the node binary and this folder into
// arbitrary images, so nothing may come from node_modules at run time), and the Python runner.
const esbuild = require("esbuild");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const outDir = path.join(root, "dist", "runtimes");
const started = Date.now();

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });

esbuild.buildSync({
  entryPoints: [path.join(root, "remote-agent", "runtimes", "node", "runner.ts")],
  outfile: path.join(outDir, "node-runner.js"),
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});

const pythonSource = path.join(root, "remote-agent", "runtimes", "python");
fs.cpSync(pythonSource, path.join(outDir, "python"), {
  recursive: true,
  filter: (source) => !source.includes("__pycache__") && !source.endsWith(".pyc"),
});

console.log(`bundle-runtimes: dist/runtimes built in ${Date.now() - started} ms`);
