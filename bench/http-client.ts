// HTTPS client of the load generator: one undici Pool per target with one keep-alive connection
// per worker, trusting only the certificate given. Runs under Node, because Bun's undici shim
// ignores `connect.ca`.
import { Pool } from "undici";

/** Per-request bound, so that a stuck server cannot hold a run past its duration for long. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface HttpTarget {
  /** Sends a request and resolves with its status once the body has been read. */
  send(request: {
    method: "GET" | "POST";
    path: string;
    body?: string;
    headers?: Record<string, string>;
  }): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

/** Refuses any origin off loopback, so that a misconfigured run cannot send load elsewhere. */
export function checkLoopback(origin: string): void {
  const host = new URL(origin).hostname.replace(/^\[|\]$/g, "");
  if (!(host === "::1" || host === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new Error(`refusing to send load to ${origin}: only loopback addresses are allowed`);
  }
}

/**
 * Opens a pool to `origin`. `ca` is the PEM the server's chain must lead to; `insecure` skips
 * verification and is only used to poll the readiness of a service whose root is not known yet.
 */
export function httpTarget(
  origin: string,
  options: { connections: number; ca?: string; insecure?: boolean },
): HttpTarget {
  checkLoopback(origin);
  const pool = new Pool(origin, {
    connections: options.connections,
    pipelining: 1,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
    connect: {
      ca: options.ca ? [options.ca] : undefined,
      rejectUnauthorized: options.insecure !== true,
    },
  });
  return {
    async send(request) {
      const headers: Record<string, string> = { ...request.headers };
      if (request.body !== undefined) headers["content-type"] ??= "application/json";
      const response = await pool.request({
        method: request.method,
        path: request.path,
        headers,
        body: request.body,
      });
      return { status: response.statusCode, text: await response.body.text() };
    },
    close: () => pool.close(),
  };
}
