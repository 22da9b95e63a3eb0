import type { AddressInfo } from "node:net";
import type { Context } from "hono";

export interface TlsMaterial {
  cert: string;
  key: string;
}

export interface ListenOptions {
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>;
  port: number;
  hostname: string;
  tls?: TlsMaterial;
}

export interface RunningServer {
  runtime: "bun" | "node";
  port: number;
  /** Replaces the server's certificate and key; new connections use them. */
  updateTls(tls: TlsMaterial): void;
  /**
   * Stops accepting connections and resolves once in-flight requests have finished, or once
   * `graceMs` has passed, when the connections still open are closed. Resolves to false when
   * the grace period ran out.
   */
  close(graceMs?: number): Promise<boolean>;
}

/** Resolves to true when `work` settles within `ms`, false when the time runs out first. */
function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  // setTimeout clamps an infinite delay to 1 ms, so no grace period means no timer at all.
  if (!Number.isFinite(ms)) return work.then(() => true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  return Promise.race([work.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

export const isBun = typeof globalThis.Bun !== "undefined";

type BunServer = ReturnType<typeof Bun.serve>;

/**
 * Throws when something listens on the port already. A TLS listener sets SO_REUSEPORT, with which
 * a second instance started by mistake would share the port instead of failing to start. This
 * check leaves a short race between the probe and the real bind.
 */
function assertPortFree(hostname: string, port: number): void {
  const probe = Bun.listen({ hostname, port, socket: { data() {} } });
  probe.stop(true);
}

/**
 * Bun.serve cannot swap its certificate: in Bun 1.4 server.reload() ignores `tls` (its docs list
 * only fetch, error, routes and websocket) and there is no setSecureContext. So a TLS listener
 * binds with SO_REUSEPORT, and a new certificate gets a new listener on the same port while the
 * old one stops accepting and finishes its in-flight requests.
 */
async function listenBun(options: ListenOptions): Promise<RunningServer> {
  const serveOptions = {
    fetch: options.fetch,
    port: options.port,
    hostname: options.hostname,
    tls: options.tls,
    reusePort: options.tls !== undefined,
  };
  if (options.tls && options.port !== 0) assertPortFree(options.hostname, options.port);
  let current: BunServer = Bun.serve(serveOptions);
  const port = current.port as number;
  /** Replaced listeners that are still finishing requests, with the promise of their stop. */
  const retiring = new Map<BunServer, Promise<void>>();
  let closed = false;

  const retire = (server: BunServer) => {
    const stopped = server.stop(false).finally(() => retiring.delete(server));
    retiring.set(server, stopped);
  };

  return {
    runtime: "bun",
    port,
    updateTls(tls) {
      if (closed) return;
      const next = Bun.serve({ ...serveOptions, port, tls });
      const previous = current;
      current = next;
      // NOTE: the kernel resets connections still waiting in the old listener's accept queue
      // when it closes; a client sees one failed connect in that moment.
      retire(previous);
    },
    async close(graceMs = Number.POSITIVE_INFINITY) {
      closed = true;
      retire(current);
      // stop(false) stops listening at once and resolves when the last in-flight request is done.
      const drained = await within(Promise.all(retiring.values()), graceMs);
      if (!drained) await Promise.all([...retiring.keys()].map((server) => server.stop(true)));
      return drained;
    },
  };
}

async function listenNode(options: ListenOptions): Promise<RunningServer> {
  const { serve } = await import("@hono/node-server");
  const https = await import("node:https");
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve(
      {
        fetch: options.fetch,
        port: options.port,
        hostname: options.hostname,
        ...(options.tls ? { createServer: https.createServer, serverOptions: options.tls } : {}),
      },
      () => resolve(started),
    );
  });
  return {
    runtime: "node",
    port: (server.address() as AddressInfo).port,
    updateTls(tls) {
      (server as import("node:https").Server).setSecureContext(tls);
    },
    async close(graceMs = Number.POSITIVE_INFINITY) {
      const http = server as import("node:http").Server;
      const closed = new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
      });
      // server.close() ends only the connections that are idle at that moment. A keep-alive
      // connection whose request finishes later would hold the server open until the client's
      // keep-alive timeout, so idle connections are closed again until the server has closed.
      http.closeIdleConnections();
      const sweep = setInterval(() => http.closeIdleConnections(), 100);
      try {
        const drained = await within(closed, graceMs);
        if (!drained) {
          http.closeAllConnections();
          await closed;
        }
        return drained;
      } finally {
        clearInterval(sweep);
      }
    },
  };
}

/** Serves `fetch` with Bun.serve under Bun and @hono/node-server under Node. */
export function listen(options: ListenOptions): Promise<RunningServer> {
  return isBun ? listenBun(options) : listenNode(options);
}

/**
 * Resolves the client address for rate limiting. Behind a proxy (TRUST_PROXY), the address is the
 * last entry of X-Forwarded-For: the one the trusted proxy appended, which a client cannot forge.
 */
export async function clientIpResolver(trustProxy: boolean): Promise<(c: Context) => string> {
  const { getConnInfo } = isBun
    ? await import("hono/bun")
    : await import("@hono/node-server/conninfo");
  return function clientIp(c) {
    if (trustProxy) {
      const forwarded = c.req.header("x-forwarded-for")?.split(",").at(-1)?.trim();
      if (forwarded) return forwarded;
    }
    try {
      return getConnInfo(c).remote.address ?? "unknown";
    } catch {
      return "unknown";
    }
  };
}
