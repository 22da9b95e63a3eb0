import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import { routePattern } from "./middleware/request-log.ts";
import { ProblemError, problemResponse } from "./problem.ts";

/** postgres.js and socket error codes that mean the database cannot be reached. */
const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/** Tells whether an error means the database is unreachable rather than a failed statement. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // Not every runtime error's code is a string; Bun's stream errors, for one, are not.
  const raw = (error as { code?: unknown }).code;
  const code = typeof raw === "string" ? raw : "";
  // SQLSTATE class 08 is connection exceptions; 57P01-57P03 are shutdown and cannot-connect-now.
  return CONNECTION_ERROR_CODES.has(code) || code.startsWith("08") || /^57P0[1-3]$/.test(code);
}

function toProblem(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  if (error instanceof HTTPException) {
    if (error.status === 413) return new ProblemError("payload_too_large", { cause: error });
    if (error.status === 400) {
      return new ProblemError("validation_failed", { detail: error.message, cause: error });
    }
  }
  if (isDatabaseUnavailable(error))
    return new ProblemError("database_unavailable", { cause: error });
  return new ProblemError("internal_error", { cause: error });
}

/**
 * The one error path: every failure becomes an application/problem+json response. A 5xx says
 * only what failed in general terms, and its cause goes to the log with the request id.
 */
export function createErrorHandler(logger: Logger) {
  return function onError(error: Error, c: Context): Response {
    const problem = toProblem(error);
    if (problem.status >= 500) {
      const cause = problem.cause ?? error;
      logger.error(
        { err: cause, requestId: c.get("requestId"), route: routePattern(c), code: problem.code },
        "request failed",
      );
    }
    return problemResponse(c, problem);
  };
}
