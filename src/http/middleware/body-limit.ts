import { createMiddleware } from "hono/factory";
import { ProblemError } from "../problem.ts";

function tooLarge(maxBytes: number): ProblemError {
  return new ProblemError("payload_too_large", {
    detail: `the request body must be at most ${maxBytes} bytes`,
  });
}

/**
 * Rejects a request body larger than `maxBytes` with 413 before anything parses it.
 *
 * A declared Content-Length above the limit is rejected without reading. Any other body is read
 * and counted, because a missing, malformed or understated Content-Length must not let a larger
 * body through: hono/body-limit trusts the header whenever it is present. Reading stops at the
 * first byte past the limit, so at most `maxBytes` are buffered.
 */
export function bodyLimit(maxBytes: number) {
  return createMiddleware(async function bodyLimit(c, next) {
    const body = c.req.raw.body;
    if (!body) return next();
    const declared = c.req.header("content-length");
    if (declared && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
      throw tooLarge(maxBytes);
    }

    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        // The client closed the connection or stalled mid-upload; there is no body to answer.
        throw new ProblemError("validation_failed", {
          detail: "the request body could not be read completely",
          cause: error,
        });
      }
      const { done, value } = chunk;
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }

    // The buffered body replaces the stream, with a Content-Length that states its real size.
    const headers = new Headers(c.req.raw.headers);
    headers.delete("transfer-encoding");
    headers.set("content-length", String(size));
    c.req.raw = new Request(c.req.raw, { headers, body: Buffer.concat(chunks) });
    await next();
  });
}
