/**
 * Remote agents through the real kernel (farlab install --prefix), driven by Debian's
 * jupyter_client (test/python/test_remote_agents.py): `%remote connect` over ZeroMQ and SSH,
 * named agents in agents.json, a refused CURVE key, an unknown and a changed SSH host key, each
 * as an error in the cell; a remote cell whose link is cut three times (a TCP proxy between the
 * kernel and a ZeroMQ agent) shows every line once, in order, with a "reconnecting" status line;
 * `%remote attach` after a kernel restart replays a job's whole output and follows it.
 *
 * The driver asks for a cut by printing "CUT"; this process cuts the proxy and answers.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { after, before } from "node:test";
import { loadOrCreateKeyPair } from "../remote-agent/keys/keypair";
import { installFarlab, type KernelspecPrefix } from "./helpers/kernelspec";
import { ListeningAgent } from "./helpers/listening-agent";
import { parseOutcomes, testEachOutcome } from "./helpers/python-driver";
import { PYTHON_TEST_DIR, REPO_ROOT } from "./helpers/repo";
import { SYSTEM_PYTHON } from "./helpers/processes";
import { keygen, Sshd } from "./helpers/sshd";
import { TcpProxy } from "./helpers/tcp-proxy";

let spec: KernelspecPrefix;
let scratch: string;
let zmqAgent: ListeningAgent;
let unauthorizedAgent: ListeningAgent;
let sshd: Sshd;
let proxy: TcpProxy;
let outcomes: Map<string, string>;
let output = "";

before(async () => {
  spec = await installFarlab("remote-agents");
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-remote-agents-"));
  const home = path.join(scratch, "home");
  const config = path.join(scratch, "config");
  fs.mkdirSync(path.join(home, ".ssh"), { recursive: true, mode: 0o700 });

  // The kernel's CURVE key, authorized on one agent and not on the other.
  const kernelKeys = loadOrCreateKeyPair(config, "client");
  zmqAgent = await ListeningAgent.start();
  zmqAgent.authorize(kernelKeys.publicKey, "kernel");
  unauthorizedAgent = await ListeningAgent.start();
  proxy = await TcpProxy.start("127.0.0.1", zmqAgent.port);

  // SSH: the kernel logs in with ~/.ssh/id_ed25519 of its HOME; the agent on the "host" is this
  // checkout's build, with its own data dir.
  sshd = await Sshd.start();
  fs.copyFileSync(sshd.clientKeyFile, path.join(home, ".ssh", "id_ed25519"));
  fs.chmodSync(path.join(home, ".ssh", "id_ed25519"), 0o600);
  const agentScript = path.join(scratch, "farlab-agent");
  fs.writeFileSync(
    agentScript,
    `#!/bin/sh\nexec ${process.execPath} ${path.join(REPO_ROOT, "dist", "remote-agent", "cli.js")} "$@" --backend process --data-dir ${path.join(scratch, "ssh-agent")}\n`,
    { mode: 0o755 },
  );
  const otherKey = path.join(scratch, "other_host_key");
  keygen(otherKey, "ed25519");
  const [type, base64] = fs.readFileSync(`${otherKey}.pub`, "utf8").split(/\s+/);

  const env: NodeJS.ProcessEnv = {
    ...spec.env,
    HOME: home,
    FARLAB_CONFIG_DIR: config,
    FARLAB_EMBEDDED_AGENT_DIR: path.join(scratch, "embedded"),
    FARLAB_TEST_TMP: scratch,
    FARLAB_TEST_TIMEOUT: "120",
    FARLAB_T_ZMQ_URL: proxy.url("tcp"),
    FARLAB_T_ZMQ_KEY: zmqAgent.serverKey,
    FARLAB_T_UNAUTH_URL: unauthorizedAgent.url,
    FARLAB_T_UNAUTH_KEY: unauthorizedAgent.serverKey,
    FARLAB_T_SSH_URL: `ssh://${sshd.user}@${sshd.host}:${sshd.port}`,
    FARLAB_T_SSH_COMMAND: agentScript,
    FARLAB_T_SSH_OTHER_KEY_LINE: `[${sshd.host}]:${sshd.port} ${type} ${base64}`,
  };
  delete env.SSH_AUTH_SOCK;

  const driver = spawn(SYSTEM_PYTHON, [path.join(PYTHON_TEST_DIR, "test_remote_agents.py")], { env, stdio: ["pipe", "pipe", "pipe"] });
  driver.stderr.setEncoding("utf8").on("data", (text: string) => (output += text));
  readline.createInterface({ input: driver.stdout }).on("line", (line) => {
    if (line === "CUT") {
      proxy.cut();
      driver.stdin.write("CUT-DONE\n");
    } else {
      output += `${line}\n`;
    }
  });
  const timer = setTimeout(() => driver.kill("SIGKILL"), 400_000);
  await new Promise((resolve) => driver.once("exit", resolve));
  clearTimeout(timer);
  outcomes = parseOutcomes(output, { kernelLogLines: true });
});

after(async () => {
  await proxy?.close();
  await zmqAgent?.stop();
  await unauthorizedAgent?.stop();
  await sshd?.stop();
  spec?.remove();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const BEHAVIOURS: Record<string, string> = {
  test_1_unauthorized_curve_key_is_a_clear_error_in_the_cell: "an unauthorized CURVE key is an AgentAuthError in the cell, saying how to get authorized",
  test_2_unknown_ssh_host_is_refused_in_the_cell: "an unknown SSH host is a HostKeyError in the cell",
  test_3_changed_ssh_host_key_is_refused_in_the_cell: "a changed SSH host key is a HostKeyError in the cell, even with --trust-new-host",
  test_4_trust_new_host_connects_and_runs_a_cell_over_ssh: "--trust-new-host records the key; a named SSH agent runs a cell",
  test_5_a_malformed_agents_json_is_a_clear_error_naming_the_file: "a malformed agents.json is an AgentConfigError naming the file",
  test_6_zeromq_default_agent_reconnects_and_loses_no_line: "three cuts of the link: every line once, in order, with a reconnecting status line",
  test_7_attach_after_a_kernel_restart_replays_the_whole_output: "%remote attach after a kernel restart replays the whole output and follows the job",
};

testEachOutcome(BEHAVIOURS, () => outcomes, () => output.slice(-6000));
