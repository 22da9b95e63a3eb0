// A loopback TCP proxy for fault injection between the service and PostgreSQL: it can cut a
// connection at a chosen point of the wire protocol, cut every connection, or refuse new ones.
import { createServer, type Server, Socket } from "node:net";

export type Direction = "to-server" | "to-client";

/** Bytes to look for in one direction of a connection. */
export interface WireMatch {
  direction: Direction;
  text: string;
}

export interface TcpProxy {
  port: number;
  /** `targetUrl` with its host and port replaced by the proxy's. */
  urlFor(targetUrl: string): string;
  /**
   * Arms a one-shot cut. One connection must show each match in turn; on the last match, both of
   * its sockets are destroyed before that chunk is forwarded. With `thenRefuse`, the proxy also
   * stops listening at that moment, as if the database went away. Resolves once the cut happened.
   */
  cutAt(steps: WireMatch[], options?: { thenRefuse?: boolean }): Promise<void>;
  /** Destroys every open connection. */
  cutAll(): void;
  /** Stops listening, so that new connections are refused, and cuts the open ones. */
  refuse(): Promise<void>;
  /** Listens again on the same port after `refuse()`. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
  /** Index of the next step this connection must match, for the armed cut. */
  step: number;
  tails: Record<Direction, string>;
}

interface ArmedCut {
  steps: WireMatch[];
  thenRefuse: boolean;
  done: () => void;
}

/**
 * Starts a proxy on 127.0.0.1 that forwards to `target`. Only loopback targets are accepted,
 * because the proxy exists to sit between a test's service and a test's PostgreSQL.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  if (target.host !== "127.0.0.1" && target.host !== "::1" && target.host !== "localhost") {
    throw new Error(`the proxy only forwards to loopback, not to ${target.host}`);
  }
  const pairs = new Set<Pair>();
  let armed: ArmedCut | undefined;
  let port = 0;
  let server: Server;

  const cut = (pair: Pair) => {
    pair.client.destroy();
    pair.server.destroy();
    pairs.delete(pair);
  };

  // Decides whether a chunk completes the armed cut for this connection. The previous chunk's
  // tail is searched too, so a match split across two TCP segments is still found.
  const shouldCut = (pair: Pair, direction: Direction, chunk: Buffer): boolean => {
    const cutPlan = armed;
    const step = cutPlan?.steps[pair.step];
    if (!cutPlan || !step || step.direction !== direction) return false;
    const text = pair.tails[direction] + chunk.toString("latin1");
    pair.tails[direction] = text.slice(-step.text.length);
    if (!text.includes(step.text)) return false;
    pair.step += 1;
    pair.tails = { "to-server": "", "to-client": "" };
    if (pair.step < cutPlan.steps.length) return false;
    armed = undefined;
    if (cutPlan.thenRefuse) void stopListening();
    cutPlan.done();
    return true;
  };

  const onConnection = (client: Socket) => {
    const upstream = new Socket();
    const pair: Pair = {
      client,
      server: upstream,
      step: 0,
      tails: { "to-server": "", "to-client": "" },
    };
    pairs.add(pair);
    upstream.connect(target.port, target.host);
    const forward = (from: Socket, to: Socket, direction: Direction) => {
      from.on("data", (chunk: Buffer) => {
        if (shouldCut(pair, direction, chunk)) return cut(pair);
        to.write(chunk);
      });
      from.on("error", () => cut(pair));
      from.on("close", () => cut(pair));
    };
    forward(client, upstream, "to-server");
    forward(upstream, client, "to-client");
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer(onConnection);
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        port = (server.address() as { port: number }).port;
        resolve();
      });
    });

  const stopListening = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const pair of pairs) cut(pair);
    });

  await listen();
  return {
    get port() {
      return port;
    },
    urlFor(targetUrl) {
      const url = new URL(targetUrl);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.toString();
    },
    cutAt(steps, options = {}) {
      return new Promise<void>((resolve) => {
        for (const pair of pairs) pair.step = 0;
        armed = { steps, thenRefuse: options.thenRefuse ?? false, done: resolve };
      });
    },
    cutAll() {
      for (const pair of pairs) cut(pair);
    },
    refuse: stopListening,
    resume: listen,
    close: stopListening,
  };
}
