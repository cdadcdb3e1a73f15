/**
 * `farlab keys`: prints this client's CURVE public key, made on first use and kept (secret 0600)
 * under ~/.config/farlab. The owner of a ZeroMQ agent allows it with `farlab-agent authorize KEY`.
 */
import type { Command } from "commander";
import { clientKeyPair, farlabConfigDir } from "../extension/transports/client-keys";

export function registerKeysCommand(program: Command): void {
  program
    .command("keys")
    .description("print this client's CURVE public key (for `farlab-agent authorize KEY` on a ZeroMQ agent's host)")
    .option("--config-dir <dir>", "where the keypair lives (default: $FARLAB_CONFIG_DIR, else ~/.config/farlab)")
    .action((options: { configDir?: string }) => {
      process.stdout.write(`${clientKeyPair(options.configDir ?? farlabConfigDir()).publicKey}\n`);
    });
}
