import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP forwarder in front of a test server that can make it unreachable on demand: `refuse()`
 * closes the port (connections are refused, open ones cut), `hang()` accepts connections and never
 * answers (a frozen host), `up()` forwards again on the same port.
 */
export class TcpSwitch {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private mode: "forward" | "hang" = "forward";

  private constructor(
    private readonly target: { host: string; port: number },
    private port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpSwitch> {
    const relay = new TcpSwitch(target, 0);
    await relay.up();
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.mode = "forward";
    this.cutAll();
    if (this.server) return;
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async refuse(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.cutAll();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  hang(): void {
    this.mode = "hang";
    this.cutAll();
  }

  async close(): Promise<void> {
    await this.refuse();
  }

  private accept(socket: Socket): void {
    this.track(socket);
    if (this.mode === "hang") return;
    const upstream = connect(this.target.port, this.target.host);
    this.track(upstream);
    socket.pipe(upstream).pipe(socket);
    const cut = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on("error", cut);
    upstream.on("error", cut);
    socket.on("close", cut);
    upstream.on("close", cut);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
  }

  private cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
