import net from 'node:net';

/**
 * A loopback TCP proxy in front of a service, for outage tests: `cut(ms)` drops every open
 * connection and refuses new ones (accepted, then reset) for that long, as a restarting
 * database or a network partition does, while the service itself keeps running.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private cutUntil = 0;
  /** Connections refused while cut: evidence that a client tried during the outage. */
  refused = 0;

  private readonly server: net.Server;

  private constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client, target));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    if (Date.now() < this.cutUntil) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  /** Drops every connection now and refuses new ones for `ms`. */
  cut(ms: number): void {
    this.cutUntil = Date.now() + ms;
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
