/**
 * A real OpenSSH server (Debian's /usr/sbin/sshd) for transport tests and benchmarks: its own
 * folder with a host key, a client key pair, authorized_keys and sshd_config, listening on a
 * free loopback port in the foreground (-D -e), beside any system sshd (UsePAM no, StrictModes
 * no, its own PidFile). Logs in as the user running the tests.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { SshConnectOptions } from "../../extension/transports/ssh";
import { freePort } from "./ports";
import { REPO_ROOT } from "./repo";

export const SSHD = "/usr/sbin/sshd";

export type KeyType = "ed25519" | "ecdsa" | "rsa";

export interface SshdOptions {
  hostKeyType?: KeyType;
  /** Extra sshd_config lines. */
  config?: string[];
}

export class Sshd {
  private constructor(
    private readonly child: ChildProcess,
    /** The folder holding everything (keys, config, logs). */
    readonly dir: string,
    readonly host: string,
    readonly port: number,
    readonly user: string,
    /** The host's public key line: `TYPE BASE64 COMMENT`. */
    readonly hostPublicKey: string,
    /** A private key (no passphrase) whose public half is in authorized_keys. */
    readonly clientKeyFile: string,
    private readonly stderr: () => string,
  ) {}

  static async start(options: SshdOptions = {}): Promise<Sshd> {
    if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} is missing: apt-get install -y openssh-server`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-sshd-"));
    const hostKey = path.join(dir, "host_key");
    const clientKey = path.join(dir, "client_key");
    keygen(hostKey, options.hostKeyType ?? "ed25519");
    keygen(clientKey, "ed25519");
    fs.copyFileSync(`${clientKey}.pub`, path.join(dir, "authorized_keys"));
    // sshd refuses to start without its privilege separation folder (made by the service normally).
    if (process.getuid?.() === 0) fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const user = os.userInfo().username;

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const configFile = path.join(dir, "sshd_config");
      fs.writeFileSync(
        configFile,
        [
          `Port ${port}`,
          "ListenAddress 127.0.0.1",
          `HostKey ${hostKey}`,
          `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
          `PidFile ${path.join(dir, "sshd.pid")}`,
          "UsePAM no",
          "StrictModes no",
          "PubkeyAuthentication yes",
          "PasswordAuthentication no",
          "KbdInteractiveAuthentication no",
          "PermitRootLogin prohibit-password",
          "AllowTcpForwarding yes",
          "Subsystem sftp /usr/lib/openssh/sftp-server",
          "LogLevel VERBOSE",
          ...(options.config ?? []),
          "",
        ].join("\n"),
      );
      const child = spawn(SSHD, ["-D", "-e", "-f", configFile], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      const ready = await new Promise<boolean | Error>((resolve) => {
        child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
          stderr += chunk;
          if (/Server listening on 127\.0\.0\.1 port \d+/.test(stderr)) resolve(true);
        });
        child.once("exit", (code) => resolve(/Address already in use/.test(stderr) ? false : new Error(`sshd exited (${code}) before listening:\n${stderr}`)));
        child.once("error", (error) => resolve(error));
      });
      if (ready === true) {
        const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, "utf8").trim();
        return new Sshd(child, dir, "127.0.0.1", port, user, hostPublicKey, clientKey, () => stderr);
      }
      if (ready instanceof Error) throw ready;
      if (attempt >= 3) throw new Error(`sshd found no free port after ${attempt} tries:\n${stderr}`);
    }
  }

  /** `[127.0.0.1]:PORT TYPE BASE64`: the line ssh would record for this server (or for a proxy
   * in front of it on `port`). */
  knownHostsLine(port = this.port): string {
    const [type, base64] = this.hostPublicKey.split(/\s+/);
    return `[${this.host}]:${port} ${type} ${base64}`;
  }

  /**
   * How a test or bench reaches this repo's agent through this sshd: only the given known_hosts
   * and the test's client key (nothing of the user's ~/.ssh), and the process backend, since
   * sshd does not pass on the test's environment (FARLAB_AGENT_BACKEND) and CI runs dockerd.
   */
  agentConnectOptions(agentDataDir: string, knownHostsFile: string): SshConnectOptions {
    return {
      url: `ssh://${this.user}@${this.host}:${this.port}`,
      command: `${process.execPath} ${path.join(REPO_ROOT, "dist", "remote-agent", "cli.js")}`,
      serveArgs: ["--backend", "process", "--data-dir", agentDataDir],
      identityFiles: [this.clientKeyFile],
      agentSocket: null,
      sshConfigFile: null,
      knownHostsFile,
      globalKnownHostsFile: null,
    };
  }

  /** sshd's own log (LogLevel VERBOSE), for assertion messages. */
  log(): string {
    return this.stderr();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/** Makes a key pair without passphrase at `file` and `file.pub`. */
export function keygen(file: string, type: KeyType): void {
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", `farlab-test-${type}`, "-f", file], { stdio: "ignore" });
}
