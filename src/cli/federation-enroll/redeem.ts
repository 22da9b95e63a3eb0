import { z } from "zod";
import { EnrollError, EXIT } from "./errors.ts";
import { describeError, httpsRequest, isTlsError } from "./https.ts";

/** Redeem attempts that end in a network failure before the command gives up. */
export const MAX_ATTEMPTS = 5;
/** Total time the command waits out 429 responses before it gives up. */
export const MAX_RATE_LIMIT_WAIT_SECONDS = 120;
/** Longer than the service's claim lease (3 x CA_TIMEOUT_SECONDS, 30 s by default). */
const REQUEST_TIMEOUT_MS = 60_000;

const enrollmentResponse = z.object({
  certificate: z.string().min(1),
  certificateChain: z.string().min(1),
  serialNumber: z.string().min(1),
  notAfter: z.string(),
  grant: z.object({ id: z.string().min(1), scopes: z.array(z.string()) }),
  peer: z.object({ id: z.string().min(1), name: z.string().min(1) }),
});

export type EnrollmentResponse = z.infer<typeof enrollmentResponse>;

export interface RedeemResult {
  /** True when the service sent again the certificate it had issued for this key. */
  replayed: boolean;
  response: EnrollmentResponse;
}

export interface RedeemInput {
  baseUrl: string;
  token: string;
  csrPem: string;
  rootPem: string;
}

const sleep = (seconds: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000));

/** Reads Retry-After as seconds or as an HTTP date; at least 1 s. */
function retryAfterSeconds(header: string | string[] | undefined): number {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return 1;
  const seconds = /^\d+$/.test(value.trim())
    ? Number(value)
    : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : 1;
}

/** "403 forbidden: detail" from a problem+json body, or the status alone. */
function problemSummary(status: number, body: string): string {
  try {
    const problem = JSON.parse(body) as { code?: unknown; detail?: unknown };
    const code = typeof problem.code === "string" ? ` ${problem.code}` : "";
    const detail = typeof problem.detail === "string" ? `: ${problem.detail}` : "";
    return `${status}${code}${detail}`;
  } catch {
    return String(status);
  }
}

function parseEnrollment(body: string): EnrollmentResponse {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new EnrollError(EXIT.verification, "the redeem response is not JSON");
  }
  const parsed = enrollmentResponse.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => issue.path.join(".")).join(", ");
    throw new EnrollError(
      EXIT.verification,
      `the redeem response is missing or has invalid ${fields}`,
    );
  }
  return parsed.data;
}

/**
 * POSTs the CSR to the redeem route, trusting only the pinned root. A network failure may have
 * lost a response after the service issued the certificate, so the same CSR is sent again: for a
 * retry with the same key within its replay window, the service returns the same certificate.
 * 429 responses are waited out as Retry-After requests, up to MAX_RATE_LIMIT_WAIT_SECONDS in total.
 */
export async function redeemToken(
  input: RedeemInput,
  say: (line: string) => void,
): Promise<RedeemResult> {
  const url = `${input.baseUrl}/api/federation/enrollment/${encodeURIComponent(input.token)}`;
  const body = JSON.stringify({ csr: input.csrPem });
  let failures = 0;
  let waitedSeconds = 0;
  for (;;) {
    let response: Awaited<ReturnType<typeof httpsRequest>>;
    try {
      response = await httpsRequest({
        method: "POST",
        url,
        caPem: input.rootPem,
        headers: { "content-type": "application/json", accept: "application/json" },
        body,
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
    } catch (error) {
      if (isTlsError(error)) {
        // A handshake failure stops the request before its path, which contains the token, is sent.
        const unsent = failures === 0 ? "; the token was not sent" : "";
        throw new EnrollError(
          EXIT.trust,
          `TLS with ${new URL(url).host} failed (${describeError(error)}): the server's ` +
            `certificate must chain to the pinned root${unsent}`,
          { cause: error },
        );
      }
      failures += 1;
      if (failures >= MAX_ATTEMPTS) {
        throw new EnrollError(
          EXIT.unavailable,
          `redeem failed ${failures} times, last with ${describeError(error)}; check the ` +
            "network and run the command again",
          { cause: error },
        );
      }
      const delay = 2 ** (failures - 1);
      say(
        `redeem: ${describeError(error)}; retrying in ${delay} s with the same key ` +
          `(attempt ${failures + 1} of ${MAX_ATTEMPTS})`,
      );
      await sleep(delay);
      continue;
    }

    const { status } = response;
    if (status === 200 || status === 201) {
      return { replayed: status === 200, response: parseEnrollment(response.body) };
    }
    if (status === 429) {
      const delay = retryAfterSeconds(response.headers["retry-after"]);
      if (waitedSeconds + delay > MAX_RATE_LIMIT_WAIT_SECONDS) {
        throw new EnrollError(
          EXIT.rejected,
          `the service still rate limits this address after ${waitedSeconds} s of waiting ` +
            `(${problemSummary(status, response.body)}); try again later`,
        );
      }
      waitedSeconds += delay;
      say(
        `redeem: rate limited; waiting ${delay} s as Retry-After asks ` +
          `(${waitedSeconds} of at most ${MAX_RATE_LIMIT_WAIT_SECONDS} s)`,
      );
      await sleep(delay);
      continue;
    }
    if (status === 410 && failures > 0 && failures < MAX_ATTEMPTS) {
      // The request whose response was lost may still have the token claimed while the CA signs.
      // Once that request finishes, a retry with the same key gets its certificate.
      failures += 1;
      const delay = 2 ** (failures - 1);
      say(`redeem: the token is busy or used, maybe by the lost request; retrying in ${delay} s`);
      await sleep(delay);
      continue;
    }
    throw errorFor(status, response.body);
  }
}

function errorFor(status: number, body: string): EnrollError {
  const summary = problemSummary(status, body);
  if (status === 404) {
    return new EnrollError(
      EXIT.token,
      `the service does not know this token (${summary}); check that --url is the service ` +
        "that issued it, or ask the admin for a new token",
    );
  }
  if (status === 410) {
    return new EnrollError(
      EXIT.token,
      `the token was already used, has expired or was revoked (${summary}); ask the admin ` +
        "for a new token",
    );
  }
  if (status >= 500) {
    return new EnrollError(
      EXIT.unavailable,
      `the service failed to issue the certificate (${summary}); try again later with the ` +
        "same token, and tell the admin if it keeps failing",
    );
  }
  return new EnrollError(EXIT.rejected, `the service rejected the redeem (${summary})`);
}
