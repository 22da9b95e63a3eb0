import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { AdminError, EXIT } from "./errors.ts";

/** Per-request timeout. Admin requests only query the database, so this is generous. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface AdminClientOptions {
  /** Base URL of the service, without a trailing slash. */
  baseUrl: string;
  /** The admin JWT, sent as a Bearer token. */
  token: string;
  /** PEM roots the server certificate must chain to; the system roots when absent. */
  caPem?: string;
}

interface Problem {
  status?: number;
  code?: string;
  detail?: string;
  requestId?: string;
}

function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

/** "404 not_found: no grant with id ... (request id ...)" from a problem+json body. */
function problemMessage(status: number, body: string): string {
  let problem: Problem = {};
  try {
    problem = JSON.parse(body) as Problem;
  } catch {
    return `the service answered ${status}: ${body.slice(0, 200)}`;
  }
  const code = problem.code ? ` ${problem.code}` : "";
  const detail = problem.detail ? `: ${problem.detail}` : "";
  const requestId = problem.requestId ? ` (request id ${problem.requestId})` : "";
  return `the service answered ${status}${code}${detail}${requestId}`;
}

/**
 * The admin REST API over node:http or node:https. node:https takes the trusted roots as `ca`
 * under Node and under Bun, where fetch would need a different option on each runtime.
 */
export class AdminClient {
  constructor(private readonly options: AdminClientOptions) {}

  /** Sends one request and returns the parsed JSON body, or undefined for 204. */
  async send<T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T> {
    const { status, text } = await this.exchange(method, path, body);
    if (status >= 400) {
      throw new AdminError(
        status >= 500 ? EXIT.failed : EXIT.rejected,
        problemMessage(status, text),
      );
    }
    if (status === 204 || text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new AdminError(
        EXIT.failed,
        `the service answered ${status} with a body that is not JSON`,
        {
          cause: error,
        },
      );
    }
  }

  private exchange(
    method: string,
    path: string,
    body: unknown,
  ): Promise<{ status: number; text: string }> {
    const url = new URL(`${this.options.baseUrl}${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.token}`,
      accept: "application/json, application/problem+json",
      "user-agent": "federation-admin",
    };
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, {
        method,
        headers,
        agent: false,
        ...(url.protocol === "https:" && this.options.caPem ? { ca: this.options.caPem } : {}),
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => {
        req.destroy(Object.assign(new Error("no response in time"), { code: "ETIMEDOUT" }));
      });
      const fail = (error: unknown) => {
        const message = `${method} ${url.origin}${url.pathname} failed: ${describeFailure(error)}`;
        reject(new AdminError(EXIT.unreachable, message, { cause: error }));
      };
      req.on("error", fail);
      req.on("response", (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          resolve({
            status: response.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
          });
        });
        response.on("error", fail);
      });
      req.end(payload);
    });
  }
}
