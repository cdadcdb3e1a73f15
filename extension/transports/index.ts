/**
 * One entry point from an agent's address to a way of connecting to it (AgentClient's
 * Connector): what `%remote connect URL ...`, `agent=URL` and ~/.config/farlab/agents.json
 * entries resolve to.
 *
 *   ssh://[user@]host[:port]   ./ssh.ts  (command=, --trust-new-host)
 *   tcp://HOST:PORT            ./zmq.ts  (server_key= required)
 *   local                      the embedded agent (not made here: see ../remote/embedded-agent.ts)
 */
import type { Transport } from "../../remote-agent/protocol/framing";
import { TransportError } from "./errors";
import { connectSsh, type SshConnectOptions } from "./ssh";
import { checkZmqUrl, connectZmq, type ZmqConnectOptions } from "./zmq";

export interface RemoteAgentAddress {
  /** ssh://... or tcp://... */
  url: string;
  /** tcp:// only: the agent's CURVE public key (`farlab-agent keys` on its host). */
  serverKey?: string;
  /** ssh:// only: the agent program on the host (default farlab-agent). */
  command?: string;
  /** ssh:// only: accept and record an unknown host key. */
  trustNewHost?: boolean;
  /** Anything else either transport accepts (tests: known_hosts path, key files, timeouts). */
  ssh?: Partial<SshConnectOptions>;
  zmq?: Partial<ZmqConnectOptions>;
}

export type Connector = () => Promise<Transport>;

export function isRemoteAgentUrl(text: string): boolean {
  return /^(ssh|tcp):\/\//i.test(text);
}

/**
 * Checks the address now (so `%remote connect` reports a bad URL or a missing server_key at once,
 * as a usage error) and returns the connector AgentClient calls on first use and after a drop.
 */
export function connectorFor(address: RemoteAgentAddress): Connector {
  const scheme = /^([a-z]+):\/\//i.exec(address.url)?.[1]?.toLowerCase();
  if (scheme === "ssh") {
    if (address.serverKey) throw new TransportError("server_key= is for tcp:// agents (ZeroMQ); an ssh:// agent is checked by its host key");
    return () =>
      connectSsh({ ...address.ssh, url: address.url, command: address.command ?? address.ssh?.command, trustNewHost: address.trustNewHost ?? address.ssh?.trustNewHost });
  }
  if (scheme === "tcp") {
    checkZmqUrl(address.url);
    const serverKey = address.serverKey ?? address.zmq?.serverKey;
    if (!serverKey) {
      throw new TransportError(
        `a tcp:// agent needs server_key=KEY, the agent's public key: run \`farlab-agent keys\` on the host of ${address.url}`,
      );
    }
    if (address.command || address.trustNewHost) throw new TransportError("command= and --trust-new-host are for ssh:// agents");
    return () => connectZmq({ ...address.zmq, url: address.url, serverKey });
  }
  throw new TransportError(`an agent URL is ssh://[user@]host[:port] or tcp://HOST:PORT, not '${address.url}'`);
}
