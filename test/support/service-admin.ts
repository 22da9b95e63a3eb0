// Admin calls over HTTPS against a service child process started with TEST_ADMIN_SECRET: the CA
// root, peers, grants and enrollment tokens, and the certificate the service presents.
import type { X509Certificate } from "node:crypto";
import { request } from "node:https";
import { connect } from "node:tls";
import { signAdminToken } from "../../src/server/admin-secret.ts";
import { createTestDatabase, usingPostgres } from "./database.ts";
import { TEST_ADMIN_SECRET, uniquePeerName } from "./harness.ts";
import { type Runtime, type ServiceProcess, startService } from "./service-process.ts";

export interface JsonResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RequestOptions {
  method?: string;
  /** PEM that the server certificate must chain to; undefined skips verification. */
  ca?: string;
  /** TLS server name to verify; the built-in CA's server certificate names localhost. */
  servername?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** Sends one HTTPS request and reads the whole response. */
export function httpsCall(url: string, options: RequestOptions = {}): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: options.method ?? "GET",
      agent: false,
      ...(options.ca ? { ca: options.ca } : { rejectUnauthorized: false }),
      servername: options.servername,
      headers: options.headers,
      timeout: 15_000,
    });
    req.on("timeout", () => req.destroy(new Error(`${url} timed out`)));
    req.on("error", reject);
    req.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) headers[name] = String(value);
        resolve({
          status: response.statusCode ?? 0,
          headers,
          body: Buffer.concat(chunks).toString(),
        });
      });
    });
    req.end(options.body);
  });
}

/** Reads the certificate the server presents on 127.0.0.1:`port`, without verifying it. */
export function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const certificate = socket.getPeerX509Certificate();
      socket.destroy();
      if (certificate) resolve(certificate);
      else reject(new Error("the server presented no certificate"));
    });
    socket.on("error", reject);
  });
}

export interface CreatedEnrollment {
  token: string;
  tokenId: string;
  caFingerprint: string;
  peer: { id: string; name: string };
  grantId: string;
}

export interface ServiceAdmin {
  /** The root from GET /api/federation/ca/roots. */
  rootPem: string;
  /** Sends an admin request trusting `rootPem`; throws unless the status is `expected`. */
  call(method: string, path: string, body: unknown, expected: number): Promise<unknown>;
  /** Creates a peer, a pending grant and an enrollment token. */
  createEnrollment(name?: string): Promise<CreatedEnrollment>;
}

/**
 * Fetches the service's root and returns admin calls that trust it. `trust` overrides the root
 * for services whose TLS certificate comes from elsewhere, such as TLS_CERT_FILE.
 */
export async function serviceAdmin(
  service: ServiceProcess,
  trust: { ca: string; servername?: string } | undefined = undefined,
): Promise<ServiceAdmin> {
  const roots = await httpsCall(`${service.url}/api/federation/ca/roots`);
  if (roots.status !== 200) throw new Error(`roots returned ${roots.status}: ${roots.body}`);
  const rootPem = roots.body;
  const tls = trust ?? { ca: rootPem, servername: "localhost" };
  const jwt = await signAdminToken({
    secret: TEST_ADMIN_SECRET,
    subject: "test-admin",
    scope: "federation:admin",
    ttlSeconds: 3600,
  });

  const call: ServiceAdmin["call"] = async (method, path, body, expected) => {
    const response = await httpsCall(`${service.url}${path}`, {
      method,
      ...tls,
      headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status !== expected) {
      throw new Error(
        `${method} ${path}: expected ${expected}, got ${response.status}: ${response.body}`,
      );
    }
    return response.body ? JSON.parse(response.body) : undefined;
  };

  return {
    rootPem,
    call,
    async createEnrollment(name = uniquePeerName("enroll")) {
      const peer = (await call("POST", "/api/federation/peers", { name }, 201)) as {
        id: string;
        name: string;
      };
      const grant = (await call(
        "POST",
        "/api/federation/grants",
        { peerId: peer.id, scopes: ["orders:read"] },
        201,
      )) as { id: string };
      const token = (await call(
        "POST",
        "/api/federation/enrollment/tokens",
        { grantId: grant.id },
        201,
      )) as { id: string; token: string; caFingerprint: string };
      return {
        token: token.token,
        tokenId: token.id,
        caFingerprint: token.caFingerprint,
        peer: { id: peer.id, name: peer.name },
        grantId: grant.id,
      };
    },
  };
}

export interface TestService {
  service: ServiceProcess;
  /** Stops the process and drops its database. */
  stop(): Promise<void>;
}

/**
 * Starts the service as a child process with TEST_ADMIN_SECRET, on a PostgreSQL database of its
 * own when DATABASE_URL is set and on embedded PGlite otherwise.
 */
export async function startTestService(
  runtime: Runtime,
  env: Record<string, string> = {},
): Promise<TestService> {
  const database = usingPostgres ? await createTestDatabase({ poolMax: 2 }) : undefined;
  try {
    const service = await startService({
      runtime,
      env: {
        ADMIN_JWT_SECRET: TEST_ADMIN_SECRET,
        ...(database ? { DATABASE_URL: database.url } : {}),
        ...env,
      },
    });
    return {
      service,
      async stop() {
        await service.cleanup();
        await database?.close();
      },
    };
  } catch (error) {
    await database?.close();
    throw error;
  }
}

/** Polls `check` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Statuses of the redeem requests the service has logged so far, in order. */
export function redeemStatuses(service: ServiceProcess): number[] {
  return service
    .logs()
    .filter((line) => line.msg === "request" && line.route === "/api/federation/enrollment/:token")
    .map((line) => Number(line.status));
}
