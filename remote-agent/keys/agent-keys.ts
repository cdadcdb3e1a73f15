/**
 * The agent's key material under its data directory, and the `farlab-agent keys` and
 * `farlab-agent authorize` commands.
 *
 *   DATA_DIR/keys/agent.pub, agent.key   the agent's CURVE keypair (secret 0600), made on first use
 *   DATA_DIR/authorized_keys             client keys allowed over ZeroMQ
 */
import * as path from "node:path";
import { authorizeKey, authorizedKeysPath } from "./authorized-keys";
import { loadOrCreateKeyPair, type CurveKeyPair } from "./keypair";

export function agentKeyPair(dataDir: string): CurveKeyPair {
  return loadOrCreateKeyPair(path.join(dataDir, "keys"), "agent");
}

/** `farlab-agent keys`: the agent's public key, what clients pass as server_key=. */
export function agentPublicKey(dataDir: string): string {
  return agentKeyPair(dataDir).publicKey;
}

/** `farlab-agent authorize KEY [--name NAME]`: a line for the user saying what happened. */
export function authorizeClient(dataDir: string, key: string, name?: string): string {
  const file = authorizedKeysPath(dataDir);
  const added = authorizeKey(file, key.trim(), name);
  return added ? `authorized ${key.trim()}${name ? ` (${name})` : ""} in ${file}` : `${key.trim()} is already authorized in ${file}`;
}
