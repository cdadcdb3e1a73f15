/**
 * A real Docker registry (Debian's docker-registry, distribution 2.8) on a loopback port, for
 * the Docker backend's pull tests: a temp config and storage folder, no auth, plain HTTP (dockerd
 * treats registries on 127.0.0.0/8 as insecure by default, so no TLS is needed). Also a small
 * image to push to it: the host's /bin/sh and the shared libraries of the node that runs the
 * agent (glibc, libstdc++, libgcc_s, ld-linux), enough for a TypeScript cell, since the agent
 * bind-mounts node and its runtimes into every container.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./ports";
import { waitFor } from "./wait";

export const REGISTRY_BINARY = "/usr/bin/docker-registry";

export class Registry {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    /** 127.0.0.1:PORT, the prefix of image names in it. */
    readonly host: string,
    readonly log: () => string,
  ) {}

  static async start(): Promise<Registry> {
    if (!fs.existsSync(REGISTRY_BINARY)) {
      throw new Error(`${REGISTRY_BINARY} is missing: \`apt-get install -y docker-registry\` (.ci/run does)`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-registry-"));
    const host = `127.0.0.1:${await freePort()}`;
    const config = path.join(dir, "config.yml");
    fs.writeFileSync(
      config,
      ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:", `    rootdirectory: ${path.join(dir, "storage")}`, "http:", `  addr: ${host}`, ""].join("\n"),
    );
    const child = spawn(REGISTRY_BINARY, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const registry = new Registry(child, dir, host, () => output);
    try {
      await waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${output}`);
          return (await fetch(`http://${host}/v2/`)).ok;
        },
        { what: `the registry to answer on ${host}`, timeoutMs: 20_000 },
      );
    } catch (e) {
      await registry.stop();
      throw e;
    }
    return registry;
  }

  /**
   * Builds the small image (`docker import` of a tar of /bin/sh and node's libraries), pushes it
   * as HOST/NAME:TAG and removes it locally, so that using it means pulling it. Returns its name.
   */
  pushSmallImage(name: string, tag: string): string {
    const image = `${this.host}/${name}:${tag}`;
    const tar = path.join(this.dir, "image.tar");
    const libraries = (binary: string) =>
      execFileSync("ldd", [binary], { encoding: "utf8" })
        .split("\n")
        .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
        .filter((file): file is string => Boolean(file));
    const files = [...new Set(["/bin/sh", ...libraries(process.execPath), ...libraries("/bin/sh")])].map((f) => f.slice(1));
    execFileSync("tar", ["-c", "--dereference", "-f", tar, "-C", "/", ...files]);
    execFileSync("docker", ["import", tar, image], { stdio: "pipe" });
    execFileSync("docker", ["push", image], { stdio: "pipe" });
    execFileSync("docker", ["rmi", image], { stdio: "pipe" });
    return image;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
