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
  /** Stops accepting connections and resolves once in-flight requests have finished. */
  close(): Promise<void>;
}

export const isBun = typeof globalThis.Bun !== "undefined";

async function listenBun(options: ListenOptions): Promise<RunningServer> {
  const serveOptions = {
    fetch: options.fetch,
    port: options.port,
    hostname: options.hostname,
    tls: options.tls,
  };
  const server = Bun.serve(serveOptions);
  return {
    runtime: "bun",
    port: server.port as number,
    updateTls(tls) {
      server.reload({ ...serveOptions, tls } as Parameters<typeof server.reload>[0]);
    },
    async close() {
      await server.stop(false);
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
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        (server as import("node:http").Server).closeIdleConnections?.();
      });
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
