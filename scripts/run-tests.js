#!/usr/bin/env node
/**
 * Runs the compiled tests (dist/test/**\/*.test.js) with node's test runner, one file at a time
 * (--test-concurrency=1: the suites start kernels, agents and servers that would fight for the
 * 2 cores), and exits with the runner's code. The TAP reporter is used so the output ends with the
 * runner's summary lines (# tests, # pass N, # fail N, ...), which CI reads.
 *
 * Usage: node scripts/run-tests.js [FILTER...] [--node-test-option...]
 *   FILTER       run only the files whose path under dist/test contains it; `magics`,
 *                `magics-parser`, `test/magics-parser.test.ts` all work
 *   --option     passed to `node --test` (e.g. --test-name-pattern="quoting")
 * Environment: FARLAB_TEST_TIMEOUT_MS, the limit for one test (default 300000), so that a hung
 * test fails with a message instead of holding CI until its own limit; FARLAB_AGENT_BACKEND,
 * the agents' backend (default here: process).
 */
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const testRoot = path.join(root, "dist", "test");

function findTestFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".test.js"))
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
    .sort();
}

/** `test/magics-parser.test.ts` -> `magics-parser`, so a source path works as a filter too. */
function normaliseFilter(filter) {
  return filter.replace(/^(\.\/)?(dist\/)?test\//, "").replace(/(\.test)?\.[cm]?[jt]s$/, "");
}

const args = process.argv.slice(2);
const nodeOptions = args.filter((arg) => arg.startsWith("-"));
const filters = args.filter((arg) => !arg.startsWith("-")).map(normaliseFilter);

const all = findTestFiles(testRoot);
const files = all.filter((file) => {
  const relative = path.relative(testRoot, file).split(path.sep).join("/");
  return filters.length === 0 || filters.some((filter) => relative.includes(filter));
});

if (files.length === 0) {
  console.error(
    all.length === 0
      ? `no compiled tests under ${path.relative(root, testRoot)}: run \`npm run build\` first`
      : `no test file matches ${filters.join(", ")}; files: ${all.map((f) => path.relative(testRoot, f)).join(", ")}`,
  );
  process.exit(1);
}

const timeoutMs = process.env.FARLAB_TEST_TIMEOUT_MS ?? "300000";
// Agents started by the tests (and by the kernels they start) use the process backend unless a
// test asks for another: with dockerd running (CI starts it) `auto` would pick docker for all of
// them. The Docker backend's own tests (test/docker-*.test.ts) pass --backend docker.
process.env.FARLAB_AGENT_BACKEND ??= "process";
const result = spawnSync(
  process.execPath,
  [
    "--test",
    "--test-concurrency=1",
    "--test-reporter=tap",
    `--test-timeout=${timeoutMs}`,
    // A test file that leaves a handle open must not hold the run open after its tests are done.
    "--test-force-exit",
    ...nodeOptions,
    ...files.map((file) => path.relative(root, file)),
  ],
  { cwd: root, stdio: "inherit" },
);

if (result.error) {
  console.error(`could not start node --test: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
