// One-line setup for tests: a migrated database, a CA, the app, an admin token and captured logs.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { createApp } from "../../src/app.ts";
import type { CertificateAuthority } from "../../src/ca/authority.ts";
import { BuiltinCa } from "../../src/ca/builtin/builtin-ca.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import type { Database } from "../../src/db/connect.ts";
import type { AdminKeySource } from "../../src/http/middleware/admin-auth.ts";
import type { RateLimitStore } from "../../src/http/rate-limit-store.ts";
import type { ServiceMetrics } from "../../src/metrics/metrics.ts";
import { signAdminToken } from "../../src/server/admin-secret.ts";
import { createTestDatabase } from "./database.ts";

export const TEST_ADMIN_SECRET = "test-admin-secret-that-is-long-enough-0123456789";
export const CLIENT_IP_HEADER = "x-test-client-ip";

export interface TestContextOptions {
  env?: Record<string, string>;
  /** Wraps or replaces the built-in CA, for example to count or fail sign calls. */
  ca?: (builtin: BuiltinCa) => CertificateAuthority;
  adminKeys?: AdminKeySource;
  rateLimitStore?: RateLimitStore;
  /** Serves /metrics and counts into these metrics. */
  metrics?: ServiceMetrics;
}

export interface TestContext {
  app: ReturnType<typeof createApp>;
  database: Database;
  sql: Database["sql"];
  builtinCa: BuiltinCa;
  ca: CertificateAuthority;
  config: Config;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  /** Raw log output, for searching for secrets. */
  logText(): string;
  adminToken(options?: { scope?: string; subject?: string }): Promise<string>;
  /** Sends a JSON request; adds the admin token unless `auth` is false. */
  send(method: string, url: string, body?: unknown, options?: SendOptions): Promise<Response>;
  /** Creates a peer, a pending grant and a token through the admin API. */
  enrollment(name?: string, scopes?: string[]): Promise<Enrollment>;
  redeem(token: string, csr: string, clientIp?: string): Promise<Response>;
  close(): Promise<void>;
}

export interface SendOptions {
  auth?: boolean;
  headers?: Record<string, string>;
}

export interface Enrollment {
  peer: { id: string; name: string };
  grant: { id: string; status: string };
  token: string;
  tokenId: string;
}

let peerCounter = 0;

/** A peer name unique within the test run. */
export function uniquePeerName(prefix = "peer"): string {
  peerCounter += 1;
  return `${prefix}-${process.pid}-${peerCounter}`;
}

export async function createTestContext(options: TestContextOptions = {}): Promise<TestContext> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "fe-test-"));
  const config = loadConfig({
    DATA_DIR: dataDir,
    PUBLIC_URL: "https://enroll.test",
    ADMIN_JWT_SECRET: TEST_ADMIN_SECRET,
    REDEEM_RATE_LIMIT: "100000",
    LOG_LEVEL: "debug",
    ...options.env,
  });
  const database = await createTestDatabase();
  const builtinCa = await BuiltinCa.open(database.sql, {
    dir: path.join(dataDir, "ca"),
    oidArc: config.CERT_OID_ARC,
    publicUrl: config.publicUrl,
  });
  const ca = options.ca ? options.ca(builtinCa) : builtinCa;

  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const logger = pino({ level: "debug" }, stream);
  const app = createApp({
    config,
    sql: database.sql,
    ca,
    logger,
    adminKeys: options.adminKeys ?? { kind: "secret", secret: TEST_ADMIN_SECRET },
    clientIp: (c) => c.req.header(CLIENT_IP_HEADER) ?? "127.0.0.1",
    rateLimitStore: options.rateLimitStore,
    metrics: options.metrics,
  });

  const adminToken: TestContext["adminToken"] = (tokenOptions = {}) =>
    signAdminToken({
      secret: TEST_ADMIN_SECRET,
      subject: tokenOptions.subject ?? "test-admin",
      scope: tokenOptions.scope ?? config.ADMIN_JWT_SCOPE,
      issuer: config.ADMIN_JWT_ISSUER,
      audience: config.ADMIN_JWT_AUDIENCE,
      ttlSeconds: 600,
    });

  const send: TestContext["send"] = async (method, url, body, sendOptions = {}) => {
    const headers: Record<string, string> = { ...sendOptions.headers };
    if (body !== undefined) headers["content-type"] ??= "application/json";
    if (sendOptions.auth !== false) headers.authorization ??= `Bearer ${await adminToken()}`;
    return app.request(url, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
  };

  const json = async (response: Response, expected: number) => {
    const text = await response.text();
    if (response.status !== expected) {
      throw new Error(`expected ${expected}, got ${response.status}: ${text}`);
    }
    return JSON.parse(text);
  };

  return {
    app,
    database,
    sql: database.sql,
    builtinCa,
    ca,
    config,
    get logs() {
      return chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line));
    },
    logText: () => chunks.join(""),
    adminToken,
    send,
    async enrollment(name = uniquePeerName(), scopes = ["orders:read"]) {
      const peer = await json(await send("POST", "/api/federation/peers", { name }), 201);
      const grant = await json(
        await send("POST", "/api/federation/grants", { peerId: peer.id, scopes }),
        201,
      );
      const token = await json(
        await send("POST", "/api/federation/enrollment/tokens", { grantId: grant.id }),
        201,
      );
      return { peer, grant, token: token.token, tokenId: token.id };
    },
    redeem(token, csr, clientIp = "127.0.0.1") {
      return send(
        "POST",
        `/api/federation/enrollment/${token}`,
        { csr },
        {
          auth: false,
          headers: { [CLIENT_IP_HEADER]: clientIp },
        },
      );
    },
    async close() {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
