/**
 * This client's CURVE keypair for ZeroMQ agents, kept under the farlab config folder
 * ($FARLAB_CONFIG_DIR, else $XDG_CONFIG_HOME/farlab, else ~/.config/farlab) as client.pub and
 * client.key (0600), made on first use. `farlab keys` prints the public half, which the agent's
 * owner allows with `farlab-agent authorize KEY`.
 */
import * as os from "node:os";
import * as path from "node:path";
import { loadOrCreateKeyPair, type CurveKeyPair } from "../../remote-agent/keys/keypair";

export function farlabConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FARLAB_CONFIG_DIR) return path.resolve(env.FARLAB_CONFIG_DIR);
  return path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config"), "farlab");
}

export function clientKeyPair(configDir: string = farlabConfigDir()): CurveKeyPair {
  return loadOrCreateKeyPair(configDir, "client");
}
