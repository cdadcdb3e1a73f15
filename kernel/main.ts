/**
 * The kernel process: `node dist/kernel/main.js CONNECTION_FILE` (the argv of kernel.json).
 *
 * It runs the protocol server only; cells run in the executor child (see docs/architecture.md).
 * SIGINT (interrupt_mode "signal") interrupts the running cell; shutdown_request or SIGTERM ends it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "../remote-agent/agent/pid-file";
import { ChildInterpreter } from "./executor/child-interpreter";
import { readConnectionFile } from "./protocol/connection-file";
import { HistoryStore } from "./protocol/history";
import { createLogger } from "./protocol/log";
import { KernelServer, type KernelInfo } from "./protocol/server";

const log = createLogger("main");

function versionOf(packageJson: string): string {
  try {
    return (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** What kernel_info_reply says about farlab and its language; read from package.json files, not by loading TypeScript. */
export function farlabKernelInfo(): KernelInfo {
  const version = versionOf(join(__dirname, "..", "..", "package.json"));
  const typescript = versionOf(require.resolve("typescript/package.json"));
  return {
    implementation: "farlab",
    implementation_version: version,
    language_info: {
      name: "typescript",
      version: typescript,
      mimetype: "text/typescript",
      file_extension: ".ts",
      codemirror_mode: "typescript",
      pygments_lexer: "typescript",
    },
    banner: `farlab ${version}: TypeScript ${typescript} on Node.js ${process.versions.node}, with %%remote cells on farlab agents`,
    help_links: [
      { text: "TypeScript handbook", url: "https://www.typescriptlang.org/docs/handbook/intro.html" },
      { text: "Node.js API", url: "https://nodejs.org/api/" },
    ],
  };
}

/**
 * jupyter_client (and `farlab run`) put their pid in JPY_PARENT_PID; when that process is gone
 * the kernel would be orphaned, so it ends itself, as ipykernel's parent poller does.
 */
function watchParent(onGone: () => void): void {
  const parent = Number(process.env.JPY_PARENT_PID);
  if (!Number.isInteger(parent) || parent <= 1) return;
  const timer = setInterval(() => {
    if (processAlive(parent)) return;
    clearInterval(timer);
    onGone();
  }, 1000);
  timer.unref();
}

async function main(argv: string[]): Promise<void> {
  const connectionFile = argv[2];
  if (!connectionFile) {
    process.stderr.write("usage: node dist/kernel/main.js CONNECTION_FILE\n");
    process.exit(2);
  }
  const connection = await readConnectionFile(connectionFile);
  const interpreter = new ChildInterpreter({ entry: process.env.FARLAB_EXECUTOR_ENTRY || undefined });
  const server = new KernelServer({
    connection,
    interpreter,
    history: new HistoryStore(),
    kernelInfo: farlabKernelInfo(),
    onShutdown: () => process.exit(0),
  });
  await server.start();
  interpreter.warmUp();

  process.on("SIGINT", () => interpreter.interrupt());
  watchParent(() => {
    log.warn("the process that started this kernel is gone; shutting down");
    process.kill(process.pid, "SIGTERM");
  });
  // A bug in one request must not take the kernel (and the notebook's state) down with it.
  process.on("uncaughtException", (error) => log.error(`uncaught: ${error.stack ?? error.message}`));
  process.on("unhandledRejection", (reason) => log.error(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`));
  process.on("SIGTERM", () => {
    void interpreter
      .shutdown(false)
      .then(() => server.close())
      .finally(() => process.exit(0));
  });
}

if (require.main === module) {
  main(process.argv).catch((error: Error) => {
    log.error(`kernel failed to start: ${error.message}`);
    process.exit(1);
  });
}
