/**
 * A TCP proxy (node:net) between a client and a server on loopback that a test can cut: `cut()`
 * destroys every connection open through it (both sides, as a dropped link would), and the proxy
 * keeps accepting new ones, so the client can reconnect through it. `connections` counts what it
 * has accepted.
 */
import * as net from "node:net";

export class TcpProxy {
  private readonly open = new Set<{ client: net.Socket; upstream: net.Socket }>();
  /** Connections accepted so far. */
  connections = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards to targetHost:targetPort. */
  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = net.createServer((client) => proxy.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** The proxy's address as a URL of `scheme` (tcp://127.0.0.1:PORT). */
  url(scheme: "tcp" | "ssh", user?: string): string {
    return `${scheme}://${user ? `${user}@` : ""}127.0.0.1:${this.port}`;
  }

  /** Drops every open connection at once, as a broken link would. Returns how many it cut. */
  cut(): number {
    const cut = this.open.size;
    for (const pair of this.open) {
      pair.client.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    }
    this.open.clear();
    return cut;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect(port, host);
    const pair = { client, upstream };
    this.open.add(pair);
    this.connections++;
    const end = () => {
      this.open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
