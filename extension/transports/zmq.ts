/**
 * Client side of a ZeroMQ agent (`tcp://HOST:PORT`, served by `farlab-agent serve --listen`):
 * one DEALER socket is one agent connection, CURVE-encrypted, authenticated by this client's
 * keypair (./client-keys.ts) against the agent's public key (`server_key=`).
 *
 * ZeroMQ hides connection trouble by design (it retries forever). An agent connection must not
 * hide it: a cell waiting on a refused key or a wrong port would hang. So `connectZmq` watches
 * the socket's events and resolves only after the CURVE handshake succeeded, or rejects at once
 * with what went wrong: a refused key (`handshake:error:auth`, from the agent's ZAP handler), a
 * broken handshake (usually a wrong server_key), nothing listening, or no answer in time. Once
 * connected, a `disconnect` ends the transport (with an error), so AgentClient reconnects with a
 * new socket and resumes its jobs, exactly as after an SSH or stdio drop.
 */
import { Dealer } from "zeromq";
import type { Incoming, Transport } from "../../remote-agent/protocol/framing";
import { curveKeyProblem } from "../../remote-agent/keys/z85";
import type { CurveKeyPair } from "../../remote-agent/keys/keypair";
import { AsyncQueue } from "../../remote-agent/transports/async-queue";
import { decodeMultipart, encodeMultipart } from "../../remote-agent/transports/multipart";
import { clientKeyPair } from "./client-keys";
import { AgentAuthError, TransportError } from "./errors";

export interface ZmqConnectOptions {
  /** tcp://HOST:PORT */
  url: string;
  /** The agent's CURVE public key (what `farlab-agent keys` prints on the agent host). */
  serverKey: string;
  /** This client's keypair; default: the one under ~/.config/farlab (made on first use). */
  clientKeys?: CurveKeyPair;
  /** How long to wait for the agent to complete the handshake. */
  connectTimeoutMs?: number;
  /** ZMTP heartbeat interval; an agent silent for 3 intervals counts as gone. */
  heartbeatMs?: number;
}

export async function connectZmq(options: ZmqConnectOptions): Promise<Transport> {
  const url = checkZmqUrl(options.url);
  const serverKeyProblem = curveKeyProblem(options.serverKey);
  if (serverKeyProblem) {
    throw new TransportError(`server_key for ${url}: ${serverKeyProblem}. \`farlab-agent keys\` on the agent host prints the right one.`);
  }
  const keys = options.clientKeys ?? clientKeyPair();
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const dealer = new Dealer({
    curveServerKey: options.serverKey,
    curvePublicKey: keys.publicKey,
    curveSecretKey: keys.secretKey,
    linger: 0,
    immediate: true, // never queue a message for a connection that has not completed its handshake
    heartbeatInterval: heartbeatMs,
    heartbeatTimeout: heartbeatMs * 3,
    heartbeatTimeToLive: heartbeatMs * 3,
  });

  const queue = new AsyncQueue<Incoming>();
  let failure: Error | undefined;
  let established = false;
  let closed = false;
  const shut = (why?: Error) => {
    if (closed) return;
    closed = true;
    failure = why;
    dealer.close();
    queue.end();
  };

  const ready = new Promise<void>((resolve, reject) => {
    let connectedOnce = false;
    const refuse = (error: Error) => {
      shut(error);
      reject(error);
    };
    const timer = setTimeout(
      () => refuse(new TransportError(`no answer from the agent at ${url} within ${Math.round((options.connectTimeoutMs ?? 15_000) / 1000)} s (is \`farlab-agent serve --listen\` running there, and is the port reachable?)`)),
      options.connectTimeoutMs ?? 15_000,
    );
    void (async () => {
      try {
        for await (const event of dealer.events) {
          switch (event.type) {
            case "connect":
              connectedOnce = true;
              break;
            case "handshake":
              if (!established) {
                established = true;
                clearTimeout(timer);
                resolve();
              }
              break;
            case "handshake:error:auth":
              clearTimeout(timer);
              refuse(
                new AgentAuthError(
                  `the agent at ${url} refused this client's key ${keys.publicKey}: ` +
                    `run \`farlab-agent authorize ${keys.publicKey}\` on the agent host, then try again`,
                ),
              );
              break;
            case "handshake:error:protocol":
            case "handshake:error:other":
              if (established) break; // a disconnect follows and ends the connection
              clearTimeout(timer);
              refuse(
                new TransportError(
                  `the CURVE handshake with ${url} failed (${event.error.message}): is server_key=${options.serverKey} ` +
                    "this agent's key, and is it a farlab agent? `farlab-agent keys` on the agent host prints its key",
                ),
              );
              break;
            case "connect:retry":
              if (connectedOnce || established) break;
              clearTimeout(timer);
              refuse(new TransportError(`nothing accepted a connection at ${url}: is \`farlab-agent serve --listen\` running there, on that port?`));
              break;
            case "disconnect":
              if (established) shut(new TransportError(`the connection to the agent at ${url} dropped`));
              break;
          }
        }
      } catch {
        // the socket was closed
      }
    })();
  });

  try {
    dealer.connect(url);
  } catch (error) {
    shut();
    throw new TransportError(`cannot connect to ${url}: ${(error as Error).message}`);
  }
  await ready;

  void (async () => {
    try {
      for await (const frames of dealer) queue.push(decodeMultipart(frames));
    } catch {
      // closed
    }
    queue.end();
  })();

  let sending: Promise<unknown> = Promise.resolve();
  return {
    send(header: object, payload?: Uint8Array): Promise<void> {
      // zeromq.js allows one pending send per socket: queue them.
      const sent = sending.then(() => {
        if (closed) throw failure ?? new Error("the connection is closed");
        return dealer.send(encodeMultipart(header, payload));
      });
      sending = sent.catch(() => undefined);
      return sent;
    },
    frames: {
      async *[Symbol.asyncIterator]() {
        yield* queue;
        if (failure) throw failure;
      },
    },
    close: () => shut(),
  };
}

/** tcp://HOST:PORT, as `%remote connect` and `agent=` accept it. */
export function checkZmqUrl(url: string): string {
  if (!/^tcp:\/\/(\[[^\]]+\]|[^:/\s]+):\d{1,5}$/.test(url)) {
    throw new TransportError(`a ZeroMQ agent URL is tcp://HOST:PORT (e.g. tcp://gpu1.example.org:7447), not '${url}'`);
  }
  return url;
}
