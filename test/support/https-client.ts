// HTTPS clients for tests against the service child process: node:https for ordinary requests,
// and a raw TLS socket for request lines that fetch and node:https would normalize or refuse.
import { request } from "node:https";
import { connect } from "node:tls";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface HttpsOptions {
  port: number;
  /** PEM root that the server certificate must chain to. */
  ca: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * Sends one request with node:https. A body sent with `chunked` has no Content-Length. Resolves
 * with the response even when the server responds before the whole body was written.
 */
export function httpsRequest(
  options: HttpsOptions,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
  chunked = false,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port: options.port,
      servername: "localhost",
      ca: options.ca,
      // A fresh connection per request: after a 413 the server closes the connection, and a
      // kept-alive socket reused at that moment fails with "socket hang up".
      agent: false,
      method,
      path,
      headers,
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    let answered = false;
    req.on("response", (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const flat: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) flat[name] = String(value);
        resolve({
          status: response.statusCode ?? 0,
          headers: flat,
          body: Buffer.concat(chunks).toString(),
        });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    if (body && chunked) {
      for (let offset = 0; offset < body.byteLength; offset += 16 * 1024) {
        req.write(body.subarray(offset, offset + 16 * 1024));
      }
    } else if (body) {
      req.write(body);
    }
    req.end();
  });
}

function decodeChunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", offset);
    if (lineEnd < 0) break;
    const size = Number.parseInt(body.subarray(offset, lineEnd).toString(), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Parses the first response on a connection from the bytes the server sent. */
export function parseRawResponse(bytes: Buffer): RawResponse {
  const headerEnd = bytes.indexOf("\r\n\r\n");
  const head = bytes.subarray(0, headerEnd < 0 ? bytes.length : headerEnd).toString("latin1");
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = headerEnd < 0 ? Buffer.alloc(0) : bytes.subarray(headerEnd + 4);
  if (headers["transfer-encoding"]?.includes("chunked")) body = decodeChunked(body);
  else if (headers["content-length"]) body = body.subarray(0, Number(headers["content-length"]));
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0),
    headers,
    body: body.toString(),
  };
}

/**
 * Writes `payload` to a TLS connection as it is and reads until the server closes it. The
 * payload should ask for `Connection: close`. The socket is not half-closed after writing,
 * because both Bun and Node drop a response still in progress once the client has sent FIN.
 */
export function rawExchange(options: HttpsOptions, payload: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(
      { host: "127.0.0.1", port: options.port, ca: options.ca, servername: "localhost" },
      () => socket.write(payload),
    );
    const finish = () => resolve(parseRawResponse(Buffer.concat(chunks)));
    socket.setTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => {
      socket.destroy();
      reject(new Error("raw request timed out"));
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    // A reset after the server responded still leaves a complete response in `chunks`.
    socket.on("error", (error: Error) => (chunks.length > 0 ? finish() : reject(error)));
    socket.on("close", finish);
  });
}
