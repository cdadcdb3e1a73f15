// tsc does not keep the executable bit; `npx farlab` and `npx farlab-agent` need it on the bins.
const fs = require("node:fs");
const path = require("node:path");
const root = path.join(__dirname, "..");
const { bin } = require(path.join(root, "package.json"));
for (const file of Object.values(bin)) {
  const full = path.join(root, file);
  if (fs.existsSync(full)) fs.chmodSync(full, 0o755);
}
