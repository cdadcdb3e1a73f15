/**
 * `farlab-agent serve --listen tcp://HOST:PORT`: many clients over one ZeroMQ ROUTER socket.
 *
 * - CURVE is always on: the agent's keypair lives in DATA_DIR/keys/agent.{pub,key} (made on first
 *   use); clients must know its public key (`farlab-agent keys`).
 * - A ZAP handler in the listener's own context accepts only the client keys in
 *   DATA_DIR/authorized_keys (re-read when it changes); a refused client's handshake fails with
 *   an authentication error, which the client turns into a message saying how to get authorized.
 * - Each client routing identity is one agent connection: a Transport whose messages are the
 *   multipart [header, payload?] of ./multipart.ts. ROUTER_NOTIFY (a libzmq draft option, built
 *   into zeromq.js's prebuilt libzmq) delivers an empty message from an identity when its peer
 *   connects and again when it disconnects, so a connection ends when its client goes away, as a
 *   stdio connection ends when stdin closes. ZMTP heartbeats notice peers that vanished silently.
 */
import { Context, Router } from "zeromq";
import type { Incoming, Transport } from "../protocol/framing";
import { MAX_HEADER_BYTES } from "../protocol/messages";
import type { Log } from "../agent/log";
import { AuthorizedKeys, authorizedKeysPath } from "../keys/authorized-keys";
import { agentKeyPair } from "../keys/agent-keys";
import { startZapHandler, type ZapHandler } from "../keys/zap-handler";
import { checkUserProof } from "../keys/user-proof";
import type { CurveKeyPair } from "../keys/keypair";
import { AsyncQueue } from "./async-queue";
import { decodeMultipart, encodeMultipart } from "./multipart";

/** libzmq's ZMQ_ROUTER_NOTIFY (draft) and its flags ZMQ_NOTIFY_CONNECT | ZMQ_NOTIFY_DISCONNECT. */
const ZMQ_ROUTER_NOTIFY = 97;
const NOTIFY_CONNECT_AND_DISCONNECT = 3;

export interface ZmqListenerOptions {
  /** tcp://HOST:PORT (PORT 0 or * picks a free port; see `endpoint`). */
  url: string;
  dataDir: string;
  log: Log;
  /** Called once per client connection; resolves when the agent is done with it. */
  serve(transport: Transport): Promise<void>;
  /** ZMTP heartbeat interval; a peer silent for 3 intervals is dropped. */
  heartbeatMs?: number;
}

export class ZmqListener {
  private readonly peers = new Map<string, RouterPeer>();
  /** zeromq.js allows one pending send per socket: sends go out one after another. */
  private sending: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly context: Context,
    private readonly router: Router,
    private readonly zap: ZapHandler,
    private readonly options: ZmqListenerOptions,
    /** The bound address, with the real port. */
    readonly endpoint: string,
    /** The agent's keypair: checks the user proofs of clients' `hello`. */
    readonly keys: CurveKeyPair,
  ) {}

  /** The agent's CURVE public key (clients pass it as server_key=). */
  get publicKey(): string {
    return this.keys.publicKey;
  }

  static async start(options: ZmqListenerOptions): Promise<ZmqListener> {
    const url = checkListenUrl(options.url);
    const keys = agentKeyPair(options.dataDir);
    const authorized = new AuthorizedKeys(authorizedKeysPath(options.dataDir), options.log);
    // Its own context: the ZAP handler answers for every secured socket of a context, and must
    // govern this listener only.
    const context = new Context();
    const zap = await startZapHandler(context, (clientKey, address) => {
      const entry = authorized.lookup(clientKey);
      if (entry) {
        options.log(`accepted client key ${clientKey}${entry.name ? ` (${entry.name})` : ""} from ${address}`);
        return { ok: true, userId: entry.name ?? clientKey };
      }
      options.log(`refused client key ${clientKey} from ${address}: not in ${authorized.file}`);
      return { ok: false, reason: `client key not in ${authorized.file}` };
    });
    const heartbeatMs = options.heartbeatMs ?? 10_000;
    const router = new Router({
      context,
      curveServer: true,
      curvePublicKey: keys.publicKey,
      curveSecretKey: keys.secretKey,
      mandatory: true, // a send to a peer that is gone fails (EHOSTUNREACH) instead of vanishing
      linger: 0,
      heartbeatInterval: heartbeatMs,
      heartbeatTimeout: heartbeatMs * 3,
      maxMessageSize: MAX_HEADER_BYTES,
      sendHighWaterMark: 10_000,
    });
    (router as unknown as { setInt32Option(option: number, value: number): void }).setInt32Option(
      ZMQ_ROUTER_NOTIFY,
      NOTIFY_CONNECT_AND_DISCONNECT,
    );
    try {
      await router.bind(url);
    } catch (error) {
      router.close();
      zap.close();
      throw new Error(`cannot listen on ${url}: ${(error as Error).message}`);
    }
    const listener = new ZmqListener(context, router, zap, options, router.lastEndpoint ?? url, keys);
    void listener.receiveLoop();
    return listener;
  }

  /** Connections open now. */
  get connections(): number {
    return this.peers.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers.values()) peer.end();
    this.peers.clear();
    this.router.close();
    this.zap.close();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const [identity, ...frames] of this.router) {
        const id = identity.toString("hex");
        const existing = this.peers.get(id);
        if (frames.length === 1 && frames[0].length === 0) {
          // ROUTER_NOTIFY: the first empty message of an identity is its connect, the next its
          // disconnect (our protocol never sends an empty header).
          if (existing) this.drop(id, existing, "disconnected");
          else this.open(id, identity);
          continue;
        }
        (existing ?? this.open(id, identity)).queue.push(decodeMultipart(frames));
      }
    } catch (error) {
      if (!this.closed) this.options.log(`ZeroMQ listener stopped receiving: ${(error as Error).message}`);
    }
  }

  private open(id: string, identity: Buffer): RouterPeer {
    const peer = new RouterPeer(identity, this);
    this.peers.set(id, peer);
    this.options.log(`client connection ${id} opened over ZeroMQ (${this.peers.size} open)`);
    void this.options.serve(peer).finally(() => this.drop(id, peer, "closed"));
    return peer;
  }

  private drop(id: string, peer: RouterPeer, why: string): void {
    if (this.peers.get(id) !== peer) return;
    this.peers.delete(id);
    peer.end();
    this.options.log(`client connection ${id} ${why} (${this.peers.size} open)`);
  }

  /** Sends one message to one peer, after those already queued. */
  sendTo(identity: Buffer, frames: Buffer[]): Promise<void> {
    const sent = this.sending.then(() => {
      if (this.closed) throw new Error("the agent stopped listening");
      return this.router.send([identity, ...frames]);
    });
    this.sending = sent.catch(() => undefined);
    return sent;
  }
}

/** One client connection over the ROUTER: what its identity sent, and a way to answer it. */
class RouterPeer implements Transport {
  readonly queue = new AsyncQueue<Incoming>();
  readonly frames: AsyncIterable<Incoming> = this.queue;

  constructor(
    private readonly identity: Buffer,
    private readonly listener: ZmqListener,
  ) {}

  async send(header: object, payload?: Uint8Array): Promise<void> {
    if (this.queue.isEnded) throw new Error("the connection is closed");
    try {
      await this.listener.sendTo(this.identity, encodeMultipart(header, payload));
    } catch (error) {
      // EHOSTUNREACH: the client is gone (its disconnect notification may still be on its way).
      this.end();
      throw error;
    }
  }

  close(): void {
    this.end();
  }

  /** A user is `curve:KEY` proven with KEY's secret half (../keys/user-proof.ts). */
  checkUser(user: string, proof: string | undefined): boolean {
    return checkUserProof(this.listener.keys, user, proof);
  }

  end(): void {
    this.queue.end();
  }
}

/** Accepts tcp://HOST:PORT only: the listener is for the network, and CURVE needs a TCP peer. */
export function checkListenUrl(url: string): string {
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/\s]+):(\d+|\*)$/.exec(url);
  if (!match) {
    throw new Error(`--listen takes tcp://HOST:PORT (e.g. tcp://0.0.0.0:7447, or port 0 for any free port), not '${url}'`);
  }
  return url;
}
