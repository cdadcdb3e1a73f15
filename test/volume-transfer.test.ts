/**
 * Volumes through the real agent (`farlab-agent serve --stdio`, built) and the kernel's real
 * transfer code (extension/remote/volume-transfer.ts) over the agent protocol: byte-identical
 * round trips (a 64 MiB file, a folder of 300 files), every way out of a volume refused, uploads
 * cut short leaving nothing, temporaries of a dead agent cleaned at start, and mounts in the
 * process backend (a cell writes into the volume; a mounted volume cannot be deleted).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { AgentClient } from "../extension/remote/agent-client";
import { spawnEmbeddedAgent } from "../extension/remote/embedded-agent";
import { AgentRequestError } from "../extension/remote/errors";
import { getPath, putPath } from "../extension/remote/volume-transfer";
import { waitFor } from "./helpers/wait";

let work: string;
let dataDir: string;
let client: AgentClient;

function connect(): AgentClient {
  return new AgentClient(() => spawnEmbeddedAgent(dataDir), { name: "test", reconnectAttempts: 0 });
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-volume-test-"));
  dataDir = path.join(work, "agent");
  client = connect();
  await client.request({ type: "volume_create", name: "data" });
});

after(() => {
  client?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const volumeDir = (name: string) => path.join(dataDir, "volumes", name);

function sha256File(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** Every file under `dir` as relative path -> sha256 (and folders as "dir"). */
function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (current: string, rel: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      const key = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        out.set(key, "dir");
        visit(full, key);
      } else out.set(key, sha256File(full));
    }
  };
  visit(dir, "");
  return out;
}

function leftovers(dir: string): string[] {
  const found: string[] = [];
  const visit = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      if (entry.name.startsWith(".farlab-tmp-")) found.push(path.join(current, entry.name));
      else if (entry.isDirectory()) visit(path.join(current, entry.name));
    }
  };
  visit(dir);
  return found;
}

async function refused(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.ok(error instanceof AgentRequestError, `${error.name}: ${error.message}`);
    assert.match(error.message, pattern);
    return true;
  });
}

test("a 64 MiB file round trips byte-identical, with progress to the end", async () => {
  const source = path.join(work, "big.bin");
  const handle = fs.openSync(source, "w");
  for (let i = 0; i < 64; i++) fs.writeSync(handle, randomBytes(1024 * 1024));
  fs.closeSync(handle);
  const progress: Array<[number, number]> = [];
  const put = await putPath(client, "data", source, "blobs/big.bin", { onProgress: (done, total) => progress.push([done, total]) });
  assert.equal(put.dataBytes, 64 * 1024 * 1024);
  assert.equal(sha256File(path.join(volumeDir("data"), "blobs", "big.bin")), sha256File(source));
  const last = progress[progress.length - 1];
  assert.equal(last[0], last[1]);
  assert.ok(progress.length >= 64, `expected a progress call per chunk, got ${progress.length}`);

  const back = path.join(work, "big.back");
  const got = await getPath(client, "data", "blobs/big.bin", back);
  assert.equal(got.kind, "file");
  assert.equal(sha256File(back), sha256File(source));
  assert.deepEqual(leftovers(volumeDir("data")), []);
  assert.deepEqual(leftovers(work), []);
});

test("a folder of 300 files (nested, empty ones included) round trips byte-identical", async () => {
  const source = path.join(work, "many");
  for (let i = 0; i < 300; i++) {
    const dir = path.join(source, `group-${i % 7}`, i % 2 ? "odd" : "even");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `file-${i}.txt`), i % 50 === 0 ? "" : randomBytes(1 + ((i * 997) % 9000)));
  }
  fs.mkdirSync(path.join(source, "empty-folder"));
  const put = await putPath(client, "data", source, "many");
  assert.equal(put.files, 300);
  assert.deepEqual(treeDigest(path.join(volumeDir("data"), "many")), treeDigest(source));

  const listing = await client.request({ type: "volume_list" });
  const data = listing.volumes.find((v) => v.name === "data");
  assert.ok(data && data.files >= 301, JSON.stringify(listing));
  const ls = await client.request({ type: "volume_ls", name: "data", path: "many" });
  assert.deepEqual(ls.entries.map((e) => e.name), ["empty-folder", ...[0, 1, 2, 3, 4, 5, 6].map((g) => `group-${g}`)]);

  const back = path.join(work, "many-back");
  const got = await getPath(client, "data", "many", back);
  assert.equal(got.files, 300);
  assert.deepEqual(treeDigest(back), treeDigest(source));
  assert.deepEqual(leftovers(work), []);
});

test("every path that leaves the volume is refused, on every operation", async () => {
  await client.request({ type: "volume_create", name: "safe" });
  const root = volumeDir("safe");
  const outside = path.join(work, "outside");
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(path.join(outside, "secret.txt"), "outside data");
  fs.symlinkSync(outside, path.join(root, "link-out")); // a folder link pointing out
  fs.symlinkSync(path.join(outside, "secret.txt"), path.join(root, "file-out")); // a file link pointing out
  fs.symlinkSync("/nonexistent/target", path.join(root, "dangling"));
  fs.mkdirSync(path.join(root, "inner"));
  fs.writeFileSync(path.join(root, "inner", "ok.txt"), "inside");
  fs.symlinkSync(path.join(root, "inner", "ok.txt"), path.join(root, "inner", "link-in")); // stays inside
  const local = path.join(work, "small.txt");
  fs.writeFileSync(local, "hello");

  const escapes = ["../x", "../../etc/passwd", "/etc/passwd", "inner/../../x", "link-out/secret.txt", "link-out", "file-out", "link-out/new.txt", "dangling"];
  for (const where of escapes) {
    const why = /leaves the volume|absolute path/;
    await refused(client.request({ type: "volume_ls", name: "safe", path: where }), why);
    await refused(client.request({ type: "volume_get", name: "safe", path: where }), why);
    await refused(putPath(client, "safe", local, where), why);
    if (!where.startsWith("link-out/") && where !== "link-out" && where !== "file-out" && where !== "dangling") {
      await refused(client.request({ type: "volume_rm", name: "safe", path: where, recursive: true }), why);
    }
  }
  // rm of a link removes the link itself, never what it points at.
  await client.request({ type: "volume_rm", name: "safe", path: "file-out", recursive: false });
  assert.equal(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "outside data");
  // A folder holding a link out is not downloaded; a link that stays inside is.
  fs.symlinkSync(outside, path.join(root, "inner", "sneaky"));
  await refused(client.request({ type: "volume_get", name: "safe", path: "inner" }), /points outside the volume/);
  fs.unlinkSync(path.join(root, "inner", "sneaky"));
  await getPath(client, "safe", "inner", path.join(work, "inner-back"));
  assert.equal(fs.readFileSync(path.join(work, "inner-back", "link-in"), "utf8"), "inside");
  // Names are checked too.
  await refused(client.request({ type: "volume_create", name: "../evil" }), /not a volume name/);
  await refused(client.request({ type: "volume_ls", name: "Bad Name", path: "" }), /not a volume name/);
  assert.equal(fs.readdirSync(outside).join(","), "secret.txt");
});

test("an upload interrupted mid-way, or whose connection dies, leaves nothing", async () => {
  await client.request({ type: "volume_create", name: "cut" });
  const source = path.join(work, "cut.bin");
  fs.writeFileSync(source, randomBytes(24 * 1024 * 1024));
  const abort = new AbortController();
  let sawProgress = false;
  await assert.rejects(
    putPath(client, "cut", source, "cut.bin", {
      signal: abort.signal,
      onProgress: (done) => {
        sawProgress = true;
        if (done >= 4 * 1024 * 1024) abort.abort();
      },
    }),
    /interrupted/,
  );
  assert.ok(sawProgress);
  assert.deepEqual(fs.readdirSync(volumeDir("cut")), []);

  // A second client whose agent connection is closed mid-upload: the agent aborts the transfer.
  const other = connect();
  await assert.rejects(
    putPath(other, "cut", source, "cut.bin", {
      onProgress: (done) => {
        if (done >= 4 * 1024 * 1024) other.close();
      },
    }),
  );
  await waitFor(() => fs.readdirSync(volumeDir("cut")).length === 0, { what: "the cut upload's temporary file to be removed" });
  assert.deepEqual(fs.readdirSync(volumeDir("cut")), []);
});

test("a transfer whose hash does not match installs nothing", async () => {
  const start = await client.request({ type: "volume_put", name: "cut", path: "x.txt", kind: "file", streamBytes: 100 });
  // A valid one-file stream: header then 5 bytes.
  const header = Buffer.from(JSON.stringify({ p: "", t: "f", s: 5, m: 0o644 }));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(header.length);
  await client.requestWithPayload({ type: "transfer_chunk", transferId: start.transferId, seq: 0 }, Buffer.concat([prefix, header, Buffer.from("hello")]));
  await refused(client.request({ type: "transfer_end", transferId: start.transferId, sha256: "0".repeat(64) }), /sha256 mismatch/);
  assert.deepEqual(fs.readdirSync(volumeDir("cut")), []);
});

test("temporaries left by an agent that died are removed when an agent starts, a live agent's are kept", async () => {
  fs.writeFileSync(path.join(volumeDir("cut"), ".farlab-tmp-leftover"), "partial");
  fs.mkdirSync(path.join(volumeDir("cut"), "sub"));
  fs.writeFileSync(path.join(volumeDir("cut"), "sub", ".farlab-tmp-999999999-t1"), "partial, of a dead pid");
  const live = `.farlab-tmp-${process.pid}-t2`; // a live process "owns" this one
  fs.writeFileSync(path.join(volumeDir("cut"), live), "in progress elsewhere");
  const fresh = connect();
  try {
    await fresh.request({ type: "volume_list" });
    assert.deepEqual(fs.readdirSync(volumeDir("cut")), [live, "sub"]);
    assert.deepEqual(fs.readdirSync(path.join(volumeDir("cut"), "sub")), []);
    fs.rmSync(path.join(volumeDir("cut"), live));
    fs.rmdirSync(path.join(volumeDir("cut"), "sub"));
  } finally {
    fresh.close();
  }
});

test("a mounted volume: a cell writes into it, %volume get returns it, delete is refused while mounted", async () => {
  await client.request({ type: "volume_create", name: "work" });
  const stream = await client.run({
    session: { name: "mounted", lang: "sh", resources: { volumes: [{ name: "work", mountPath: "/mnt/farlab-test-work", readOnly: false }] } },
    code: "echo written-by-cell > /mnt/farlab-test-work/out.txt && ls /mnt/farlab-test-work",
  });
  let status = "";
  let output = "";
  for await (const event of stream) {
    if (event.event.kind === "stream") output += event.event.text;
    if (event.event.kind === "error") output += `${event.event.ename}: ${event.event.evalue}`;
    if (event.event.kind === "done") status = event.event.status;
  }
  assert.equal(status, "ok", output);
  assert.equal(fs.readFileSync(path.join(volumeDir("work"), "out.txt"), "utf8"), "written-by-cell\n");
  await getPath(client, "work", "out.txt", path.join(work, "out.txt"));
  assert.equal(fs.readFileSync(path.join(work, "out.txt"), "utf8"), "written-by-cell\n");
  // The host's mount table is untouched: the bind mount lived in the runtime's namespace only.
  assert.ok(!fs.readFileSync("/proc/self/mounts", "utf8").includes("/mnt/farlab-test-work"));

  await refused(client.request({ type: "volume_delete", name: "work" }), /mounted by session 'mounted'/);
  await client.request({ type: "session_stop", name: "mounted" });
  await client.request({ type: "volume_delete", name: "work" });
  assert.ok(!fs.existsSync(volumeDir("work")));
});

test("a read-only mount refuses writes", async () => {
  await client.request({ type: "volume_create", name: "ro" });
  const stream = await client.run({
    session: { lang: "sh", fresh: true, resources: { volumes: [{ name: "ro", mountPath: "/mnt/farlab-test-ro", readOnly: true }] } },
    code: "touch /mnt/farlab-test-ro/x 2>&1 || echo REFUSED",
  });
  let output = "";
  for await (const event of stream) if (event.event.kind === "stream") output += event.event.text;
  assert.match(output, /Read-only file system/);
  assert.match(output, /REFUSED/);
  assert.deepEqual(fs.readdirSync(volumeDir("ro")), []);
});
