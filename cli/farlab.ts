#!/usr/bin/env node
/**
 * The `farlab` command: install the kernelspec, run a notebook headless.
 * (The agent has its own command, farlab-agent.)
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { installKernelSpec, type InstallTarget } from "../kernel/install";
import { runNotebook } from "../kernel/run-notebook";
import { registerKeysCommand } from "./keys";

function version(): string {
  return (JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command("farlab").description("a TypeScript Jupyter kernel with remote GPU cells").version(version());

  program
    .command("install")
    .description("install the farlab kernelspec for Jupyter (default: --user)")
    .addOption(new Option("--user", "install for this user (the Jupyter data dir)").conflicts(["sysPrefix", "prefix"]))
    .addOption(new Option("--sys-prefix", "install into the active Python environment").conflicts(["prefix"]))
    .addOption(new Option("--prefix <dir>", "install into DIR/share/jupyter/kernels"))
    .action((options: { user?: boolean; sysPrefix?: boolean; prefix?: string }) => {
      const target: InstallTarget = options.prefix
        ? { kind: "prefix", dir: options.prefix }
        : options.sysPrefix
          ? { kind: "sys-prefix" }
          : { kind: "user" };
      const dir = installKernelSpec(target);
      console.log(`installed kernelspec farlab in ${dir}`);
    });

  program
    .command("run")
    .description("execute a notebook headless through the farlab kernel and write the executed copy")
    .argument("<notebook>", "the .ipynb file to run")
    .option("-o, --output <file>", "where to write the executed notebook (default: NAME.executed.ipynb beside it)")
    .option("--timeout <seconds>", "interrupt and fail a cell that runs longer than this", parseSeconds)
    .action(async (notebook: string, options: { output?: string; timeout?: number }) => {
      // Ctrl-C: the kernel (same process group) interrupts its cell; we exit, and take it with us.
      process.once("SIGINT", () => process.exit(130));
      const result = await runNotebook(notebook, {
        output: options.output,
        timeoutSeconds: options.timeout,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (result.failure) {
        const { cellIndex, ename, evalue, traceback } = result.failure;
        const where = cellIndex >= 0 ? `cell ${cellIndex + 1}` : "the kernel";
        process.stderr.write(`${where} failed: ${ename}: ${evalue}\n`);
        if (traceback.length) process.stderr.write(`${traceback.join("\n")}\n`);
        process.exitCode = 1;
      }
      console.log(`wrote ${result.outputPath}`);
    });

  registerKeysCommand(program);
  return program;
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError(`expected a number of seconds > 0, not '${value}'`);
  return seconds;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((error: Error) => {
      process.stderr.write(`farlab: ${error.name === "Error" ? "" : `${error.name}: `}${error.message}\n`);
      process.exitCode = 2;
    });
}
