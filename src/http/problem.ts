import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The closed set of error codes this API returns, each with its HTTP status and title. */
export const PROBLEMS = {
  validation_failed: [400, "Request validation failed"],
  invalid_csr: [400, "Invalid certificate signing request"],
  unauthorized: [401, "Authentication required"],
  forbidden: [403, "Insufficient scope"],
  not_found: [404, "Not found"],
  token_not_found: [404, "Enrollment token not found"],
  conflict: [409, "Conflict"],
  grant_not_pending: [409, "Grant is not pending"],
  token_used: [409, "Token was already used"],
  token_gone: [410, "Enrollment token is no longer valid"],
  payload_too_large: [413, "Request body too large"],
  unsupported_media_type: [415, "Content-Type must be application/json"],
  rate_limited: [429, "Too many requests"],
  internal_error: [500, "Internal server error"],
  ca_error: [502, "The certificate authority failed"],
  ca_rejected: [502, "The certificate authority rejected the request"],
  ca_unavailable: [503, "The certificate authority is unavailable"],
  database_unavailable: [503, "The database is unavailable"],
  auth_unavailable: [503, "Admin authentication is unavailable"],
  ca_timeout: [504, "The certificate authority timed out"],
} as const satisfies Record<string, readonly [ContentfulStatusCode, string]>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface ProblemOptions {
  /** Sent to the client. Never include a secret or an upstream's own message. */
  detail?: string;
  headers?: Record<string, string>;
  /** Extra members of the problem body, such as validation errors. */
  extensions?: Record<string, unknown>;
  /** Logged, never sent. */
  cause?: unknown;
}

/** An error that the API answers with an application/problem+json body (RFC 9457). */
export class ProblemError extends Error {
  override name = "ProblemError";
  readonly status: ContentfulStatusCode;

  constructor(
    readonly code: ProblemCode,
    readonly options: ProblemOptions = {},
  ) {
    super(options.detail ?? PROBLEMS[code][1], { cause: options.cause });
    this.status = PROBLEMS[code][0];
  }
}

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Writes the problem body for `error`. */
export function problemResponse(c: Context, error: ProblemError): Response {
  const [status, title] = PROBLEMS[error.code];
  const body = {
    type: `urn:federation-enrollment:problem:${error.code}`,
    title,
    status,
    detail: error.options.detail ?? title,
    code: error.code,
    requestId: c.get("requestId"),
    ...error.options.extensions,
  };
  const headers = { "content-type": PROBLEM_CONTENT_TYPE, ...error.options.headers };
  return c.body(JSON.stringify(body), status, headers);
}
