// A loopback TCP proxy in front of step-ca that can lose connections the way a host restart or a
// middlebox does: silently, so that the client still holds them as idle keep-alive connections and
// only learns of the loss (a reset) when it sends its next request. It can also stop listening, so
// that connections are refused, and hold connections, so that requests get no answer.
import { createServer, type Server, Socket } from "node:net";

export interface DroppingProxy {
  /** `https://127.0.0.1:<proxy port>`. */
  url: string;
  /** Connections accepted so far. */
  connections: number;
  /** Connections reset because they were used after `dropSilently()`. */
  resets: number;
  /**
   * Loses every open connection without telling the client: nothing more reaches it, and the next
   * bytes it sends on such a connection are answered with a TCP reset.
   */
  dropSilently(): void;
  /** While held, new connections are accepted but nothing is forwarded: requests hang. */
  hold(held: boolean): void;
  /** Stops listening, so that connections are refused, and closes the open ones. */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

interface Link {
  client: Socket;
  upstream: Socket;
  dropped: boolean;
}

export async function startDroppingProxy(targetUrl: string): Promise<DroppingProxy> {
  const target = new URL(targetUrl);
  const links = new Set<Link>();
  let held = false;

  const onConnection = (client: Socket) => {
    proxy.connections += 1;
    client.on("error", () => {});
    if (held) {
      // Accepted, then never answered.
      links.add({ client, upstream: new Socket(), dropped: true });
      client.on("data", () => {});
      return;
    }
    const upstream = new Socket();
    const link: Link = { client, upstream, dropped: false };
    links.add(link);
    upstream.on("error", () => client.destroy());
    upstream.connect(Number(target.port), target.hostname);
    upstream.on("data", (chunk) => {
      if (!link.dropped) client.write(chunk);
    });
    upstream.on("close", () => {
      if (!link.dropped) client.end();
    });
    client.on("data", (chunk) => {
      if (link.dropped) {
        proxy.resets += 1;
        client.resetAndDestroy();
      } else {
        upstream.write(chunk);
      }
    });
    client.on("close", () => {
      upstream.destroy();
      links.delete(link);
    });
  };

  let server: Server = createServer(onConnection);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  const port = await listen(0);
  const stopListening = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      links.clear();
    });

  const proxy: DroppingProxy = {
    url: `https://127.0.0.1:${port}`,
    connections: 0,
    resets: 0,
    dropSilently() {
      for (const link of links) {
        link.dropped = true;
        link.upstream.destroy();
      }
    },
    hold(value) {
      held = value;
    },
    refuse: stopListening,
    async resume() {
      server = createServer(onConnection);
      await listen(port);
    },
    close: stopListening,
  };
  return proxy;
}
