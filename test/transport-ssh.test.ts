/**
 * The SSH transport end to end: a real sshd (Debian's) on a loopback port with its own host key
 * and authorized_keys; ssh2 logs in, runs the built agent (`node dist/remote-agent/cli.js serve
 * --stdio`) and speaks the agent protocol over the exec channel. Host keys are checked against
 * known_hosts files the tests write (plain, hashed by the real ssh-keygen -H, changed).
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { AgentClient } from "../extension/remote/agent-client";
import { HostKeyError, SshError } from "../extension/transports/errors";
import { connectSsh, type SshConnectOptions } from "../extension/transports/ssh";
import { keygen, Sshd } from "./helpers/sshd";
import { REPO_ROOT } from "./helpers/repo";
import { waitFor } from "./helpers/wait";

/** The agent program on the "remote" host: this checkout's build, run by this node. */
const AGENT_COMMAND = `${process.execPath} ${path.join(REPO_ROOT, "dist", "remote-agent", "cli.js")}`;

let sshd: Sshd;
let work: string;
let agentData: string;

before(async () => {
  sshd = await Sshd.start();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-ssh-test-"));
  agentData = path.join(work, "agent-data");
});

after(async () => {
  await sshd.stop();
});

let files = 0;
/** A known_hosts file holding `lines`. */
function knownHosts(...lines: string[]): string {
  const file = path.join(work, `known_hosts.${++files}`);
  fs.writeFileSync(file, lines.map((l) => `${l}\n`).join(""));
  return file;
}

/** Options for the test sshd: its client key only, no ssh-agent, no ~/.ssh of the machine. */
function options(extra: Partial<SshConnectOptions> & { knownHostsFile: string }): SshConnectOptions {
  return {
    url: `ssh://${sshd.user}@${sshd.host}:${sshd.port}`,
    command: AGENT_COMMAND,
    serveArgs: ["--backend", "process", "--data-dir", agentData],
    identityFiles: [sshd.clientKeyFile],
    agentSocket: null,
    sshConfigFile: null,
    globalKnownHostsFile: null,
    ...extra,
  };
}

async function hello(connect: SshConnectOptions): Promise<string> {
  const client = new AgentClient(() => connectSsh(connect), { name: "ssh", reconnectAttempts: 0 });
  try {
    const status = await client.request({ type: "status" });
    assert.equal(client.agentInfo?.agentId, status.agentId);
    return status.agentId;
  } finally {
    client.close();
  }
}

test("a known host: hello and status over the exec channel", async () => {
  const agentId = await hello(options({ knownHostsFile: knownHosts("# comment", "otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4Bq2wI2mQh6yQm0dC2Yc3cOJcG2hZlJd2uK9hQJ3Q1", sshd.knownHostsLine()) }));
  assert.match(agentId, /^[0-9a-f-]{36}$/);
});

test("an unknown host is refused with HostKeyError, before login", async () => {
  const file = knownHosts();
  await assert.rejects(connectSsh(options({ knownHostsFile: file })), (error: Error) => {
    assert.ok(error instanceof HostKeyError, `${error.name}: ${error.message}`);
    assert.match(error.message, /host key of \[127\.0\.0\.1\]:\d+ is not known \(ssh-ed25519 key SHA256:[\w+/]+;.*--trust-new-host/);
    return true;
  });
  assert.equal(fs.readFileSync(file, "utf8"), "", "nothing may be recorded without trustNewHost");
});

test("trustNewHost records the host; the next connection needs no flag", async () => {
  const file = knownHosts();
  await hello(options({ knownHostsFile: file, trustNewHost: true }));
  const recorded = fs.readFileSync(file, "utf8").trim();
  assert.equal(recorded, sshd.knownHostsLine());
  await hello(options({ knownHostsFile: file }));
});

test("a changed host key is refused, also with trustNewHost, naming the file and line", async () => {
  const other = path.join(work, "other_host_key");
  keygen(other, "ed25519");
  const [type, base64] = fs.readFileSync(`${other}.pub`, "utf8").split(/\s+/);
  const file = knownHosts("# first line", `[${sshd.host}]:${sshd.port} ${type} ${base64}`);
  for (const trustNewHost of [false, true]) {
    await assert.rejects(connectSsh(options({ knownHostsFile: file, trustNewHost })), (error: Error) => {
      assert.ok(error instanceof HostKeyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
      assert.ok(error.message.includes(`${file}:2`), error.message);
      assert.match(error.message, /ssh-keygen -R/);
      return true;
    });
  }
  assert.equal(fs.readFileSync(file, "utf8").split("\n").length, 3, "the file is left alone");
});

test("a hashed known_hosts entry (ssh-keygen -H) is recognised", async () => {
  const file = knownHosts(sshd.knownHostsLine());
  execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
  assert.match(fs.readFileSync(file, "utf8"), /^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /);
  await hello(options({ knownHostsFile: file }));
});

test("an ~/.ssh/config alias (from an Include) supplies HostName, Port, User and IdentityFile", async () => {
  // The alias lives in an included file, as in many real configs (Include ~/.ssh/config.d/*).
  const included = path.join(work, "config.d");
  fs.mkdirSync(included);
  fs.writeFileSync(
    path.join(included, "farlab.conf"),
    ["Host farlab-test-alias", `  HostName ${sshd.host}`, `  Port ${sshd.port}`, `  User ${sshd.user}`, `  IdentityFile ${sshd.clientKeyFile}`, ""].join("\n"),
  );
  const config = path.join(work, "ssh_config");
  fs.writeFileSync(config, [`Include ${included}/*.conf`, "Host *", "  User nobody-by-default", ""].join("\n"));
  await hello({
    ...options({ knownHostsFile: knownHosts(sshd.knownHostsLine()) }),
    url: "ssh://farlab-test-alias",
    identityFiles: undefined,
    sshConfigFile: config,
  });
});

test("ProxyJump goes through a jump host, checking both host keys", async () => {
  const config = path.join(work, "ssh_config_jump");
  fs.writeFileSync(
    config,
    [
      "Host jump",
      `  HostName ${sshd.host}`,
      `  Port ${sshd.port}`,
      `  IdentityFile ${sshd.clientKeyFile}`,
      "Host behind-jump",
      // Seen from the jump host: the same sshd, reached over a direct-tcpip channel.
      `  HostName ${sshd.host}`,
      `  Port ${sshd.port}`,
      `  IdentityFile ${sshd.clientKeyFile}`,
      "  ProxyJump jump",
      "",
    ].join("\n"),
  );
  const known = knownHosts(sshd.knownHostsLine());
  const count = (pattern: RegExp) => sshd.log().split("\n").filter((line) => pattern.test(line)).length;
  const logins = count(/Accepted publickey/);
  const sessions = count(/Starting session: command/);
  await hello({ ...options({ knownHostsFile: known }), url: "ssh://behind-jump", identityFiles: undefined, sshConfigFile: config });
  // Two logins (the jump host, then the target through it), one command: the agent on the target.
  assert.equal(count(/Accepted publickey/) - logins, 2);
  assert.equal(count(/Starting session: command/) - sessions, 1);
});

test("a key the server does not accept, and a missing agent program, fail with SshError", async () => {
  const stranger = path.join(work, "stranger_key");
  keygen(stranger, "ed25519");
  const known = knownHosts(sshd.knownHostsLine());
  await assert.rejects(connectSsh(options({ knownHostsFile: known, identityFiles: [stranger] })), (error: Error) => {
    assert.ok(error instanceof SshError, `${error.name}: ${error.message}`);
    assert.match(error.message, /refused every login method tried \(key .*stranger_key\)/);
    return true;
  });
  const client = new AgentClient(() => connectSsh(options({ knownHostsFile: known, command: "/nonexistent/farlab-agent" })), { name: "ssh", reconnectAttempts: 0 });
  await assert.rejects(client.request({ type: "status" }), /exited with code 127 \(is it installed and on PATH/);
  client.close();
});

test("keys held by an ssh-agent (SSH_AUTH_SOCK) log in", async () => {
  const socket = path.join(work, "agent.sock");
  const agentProcess = spawn("ssh-agent", ["-D", "-a", socket], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    await waitFor(() => fs.existsSync(socket), { what: "ssh-agent's socket" });
    execFileSync("ssh-add", [sshd.clientKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: "ignore" });
    await hello(options({ knownHostsFile: knownHosts(sshd.knownHostsLine()), identityFiles: [], agentSocket: socket }));
  } finally {
    agentProcess.kill("SIGTERM");
  }
});

test("ecdsa and rsa host keys are verified too", async () => {
  for (const hostKeyType of ["ecdsa", "rsa"] as const) {
    const server = await Sshd.start({ hostKeyType });
    try {
      const url = `ssh://${server.user}@${server.host}:${server.port}`;
      const [type] = server.hostPublicKey.split(" ");
      assert.equal(type, hostKeyType === "rsa" ? "ssh-rsa" : "ecdsa-sha2-nistp256");
      await hello({ ...options({ knownHostsFile: knownHosts(server.knownHostsLine()) }), url, identityFiles: [server.clientKeyFile] });
      // The same host recorded with the test sshd's ed25519 key: a changed key, whatever its type.
      const wrong = knownHosts(`[${server.host}]:${server.port} ${sshd.hostPublicKey}`);
      await assert.rejects(connectSsh({ ...options({ knownHostsFile: wrong }), url, identityFiles: [server.clientKeyFile] }), /HAS CHANGED/);
    } finally {
      await server.stop();
    }
  }
});
