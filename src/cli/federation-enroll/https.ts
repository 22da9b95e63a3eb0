import type { IncomingHttpHeaders } from "node:http";
import { request } from "node:https";

/**
 * Largest response body read. The roots are fetched before the server is trusted, so a hostile
 * server must not be able to make the command buffer without limit.
 */
const MAX_BODY_BYTES = 1024 * 1024;

export interface HttpsResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpsRequest {
  method: "GET" | "POST";
  url: string;
  /**
   * PEM roots that the server certificate must chain to. Null skips verification, which only the
   * roots fetch before pinning may do.
   */
  caPem: string | null;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

/** Creates a request failure with a Node-style code, such as ECONNRESET or ETIMEDOUT. */
function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Sends one request on a connection of its own. node:https honours `ca` under Node and under Bun
 * (checked with Bun 1.4.5), whereas fetch takes a custom CA through a different option on each.
 */
export function httpsRequest(options: HttpsRequest): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(options.url, {
      method: options.method,
      agent: false,
      ...(options.caPem === null ? { rejectUnauthorized: false } : { ca: options.caPem }),
      headers: {
        "user-agent": "federation-enroll",
        connection: "close",
        ...options.headers,
        ...(options.body === undefined
          ? {}
          : { "content-length": String(Buffer.byteLength(options.body)) }),
      },
    });
    req.setTimeout(options.timeoutMs, () => {
      req.destroy(codedError("ETIMEDOUT", `no response within ${options.timeoutMs / 1000} s`));
    });
    req.on("error", reject);
    req.on("response", (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let complete = false;
      response.on("data", (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > MAX_BODY_BYTES) {
          req.destroy(codedError("ERR_BODY_TOO_LARGE", "the response body exceeds 1 MiB"));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => {
        complete = true;
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
      });
      response.on("error", reject);
      response.on("close", () => {
        if (!complete) {
          reject(
            codedError("ECONNRESET", "the connection closed before the response was complete"),
          );
        }
      });
    });
    req.end(options.body);
  });
}

/** Error codes that OpenSSL and Node give when the server's certificate fails verification. */
const TLS_VERIFY_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "HOSTNAME_MISMATCH",
  "INVALID_CA",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "EPROTO",
]);

/** Returns the error's code, such as ECONNREFUSED, or "" when it has none. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** Tells whether a request failed in TLS: the server certificate's verification or the handshake. */
export function isTlsError(error: unknown): boolean {
  const code = errorCode(error);
  return TLS_VERIFY_CODES.has(code) || code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_");
}

/** Describes a request failure in one line: the code, then the message. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = errorCode(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
