import { isBun } from "../../server/listen.ts";

export interface CaResponse {
  status: number;
  /** Raw body text; the caller parses it, so a truncated body is its own error. */
  text: string;
}

export interface CaRequest {
  method: "GET" | "POST";
  url: string;
  body?: unknown;
  signal?: AbortSignal;
  /** Client certificate for mTLS calls such as renew. */
  clientCert?: { cert: string; key: string };
}

/**
 * A request that failed before any part of a response arrived, such as a connection refused, or
 * reset on a pooled keep-alive connection that step-ca had dropped. The cause is the runtime's
 * own error. A failure while reading a response body is not one of these.
 */
export class NoResponseError extends Error {
  override name = "NoResponseError";

  constructor(cause: unknown) {
    super(`no response: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Awaits the part of a request that ends when the response headers arrive. */
async function beforeResponse<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw new NoResponseError(error);
  }
}

/** HTTPS to step-ca that trusts only the configured root. */
export interface CaTransport {
  send(request: CaRequest): Promise<CaResponse>;
  close(): Promise<void>;
}

/**
 * Under Node, undici with an Agent whose TLS trust is the step-ca root alone. Under Bun,
 * `import "undici"` resolves to Bun's built-in shim, whose Agent ignores `connect.ca`; Bun's own
 * fetch takes the root through its `tls` option instead.
 */
export async function createCaTransport(rootPem: string): Promise<CaTransport> {
  return isBun ? bunTransport(rootPem) : nodeTransport(rootPem);
}

function bunTransport(rootPem: string): CaTransport {
  return {
    async send(request) {
      const response = await beforeResponse(
        fetch(request.url, {
          method: request.method,
          headers: request.body === undefined ? {} : { "content-type": "application/json" },
          body: request.body === undefined ? undefined : JSON.stringify(request.body),
          signal: request.signal,
          tls: { ca: [rootPem], ...(request.clientCert ?? {}), rejectUnauthorized: true },
        } as RequestInit),
      );
      return { status: response.status, text: await response.text() };
    },
    async close() {},
  };
}

async function nodeTransport(rootPem: string): Promise<CaTransport> {
  const { Agent, request: undiciRequest } = await import("undici");
  const agent = new Agent({
    connect: { ca: [rootPem], rejectUnauthorized: true },
    keepAliveTimeout: 10_000,
  });
  return {
    async send(request) {
      const dispatcher = request.clientCert
        ? new Agent({ connect: { ca: [rootPem], rejectUnauthorized: true, ...request.clientCert } })
        : agent;
      try {
        const response = await beforeResponse(
          undiciRequest(request.url, {
            method: request.method,
            dispatcher,
            headers: request.body === undefined ? {} : { "content-type": "application/json" },
            body: request.body === undefined ? undefined : JSON.stringify(request.body),
            signal: request.signal,
          }),
        );
        return { status: response.statusCode, text: await response.body.text() };
      } finally {
        if (dispatcher !== agent) await dispatcher.close();
      }
    },
    close: () => agent.close(),
  };
}
