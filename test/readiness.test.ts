// GET /readyz answers 503 and names the part that is not ready: the database, its migrations, or
// the CA (step-ca's /health), and recovers when the part does.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { createApp } from "../src/app.ts";
import type { CertificateAuthority } from "../src/ca/authority.ts";
import { BuiltinCa } from "../src/ca/builtin/builtin-ca.ts";
import { StepCa } from "../src/ca/step-ca/step-ca.ts";
import { loadConfig } from "../src/config.ts";
import { createPool, type Sql } from "../src/db/connect.ts";
import { expectedMigrationCount } from "../src/db/migrate.ts";
import { createTestDatabase } from "./support/database.ts";
import { startDroppingProxy } from "./support/dropping-proxy.ts";
import { TEST_ADMIN_SECRET } from "./support/harness.ts";
import { locateStepCa, type StepCaInstance, startStepCa } from "./support/step-ca.ts";

const OID_ARC = "1.3.6.1.4.1.32473.7";

let dir: string;
let builtin: BuiltinCa;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fe-readyz-"));
  // The built-in CA needs the database only to record revocations, which readiness never does.
  builtin = await BuiltinCa.open(undefined as unknown as Sql, {
    dir: path.join(dir, "ca"),
    oidArc: OID_ARC,
    publicUrl: "https://enroll.test",
  });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function appWith(sql: Sql, ca: CertificateAuthority) {
  const config = loadConfig({
    DATA_DIR: dir,
    PUBLIC_URL: "https://enroll.test",
    ADMIN_JWT_SECRET: TEST_ADMIN_SECRET,
    CERT_OID_ARC: OID_ARC,
  });
  return createApp({
    config,
    sql,
    ca,
    logger: pino({ level: "silent" }),
    adminKeys: { kind: "secret", secret: TEST_ADMIN_SECRET },
    clientIp: () => "127.0.0.1",
  });
}

interface Readiness {
  status: string;
  failing: string[];
  checks: Record<string, { ok: boolean; error?: string }>;
}

async function readyz(app: ReturnType<typeof appWith>): Promise<[number, Readiness]> {
  const response = await app.request("/readyz");
  return [response.status, (await response.json()) as Readiness];
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("GET /readyz", () => {
  test("a database that is down: 503 naming the database, and the migrations as unknown", async () => {
    const sql = createPool(`postgres://postgres@127.0.0.1:${await closedPort()}/nothing`, 1);
    try {
      const [status, body] = await readyz(appWith(sql, builtin));
      expect(status).toBe(503);
      expect(body.status).toBe("not_ready");
      expect(body.failing).toEqual(["database", "migrations"]);
      expect(body.checks.database?.ok).toBe(false);
      expect(body.checks.migrations).toEqual({ ok: false, error: "database unavailable" });
      expect(body.checks.certificateAuthority).toEqual({ ok: true });
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test("a database that goes away and comes back", async () => {
    const database = await createTestDatabase();
    const proxy = await startDroppingProxy(database.url.replace(/^postgres/, "https"));
    // postgres.js through the proxy: the same database, on the proxy's port.
    const proxied = new URL(database.url);
    proxied.port = new URL(proxy.url).port;
    const sql = createPool(proxied.toString(), 1);
    const app = appWith(sql, builtin);
    try {
      expect((await readyz(app))[0]).toBe(200);
      await proxy.refuse();
      const [status, body] = await readyz(app);
      expect(status).toBe(503);
      expect(body.failing).toContain("database");
      await proxy.resume();
      expect(await readyz(app)).toEqual([
        200,
        {
          status: "ready",
          failing: [],
          checks: {
            database: { ok: true },
            migrations: { ok: true },
            certificateAuthority: { ok: true },
          },
        },
      ]);
    } finally {
      await sql.end({ timeout: 1 });
      await proxy.close();
      await database.close();
    }
  });

  test("missing migrations: 503 naming the migrations, with how many are applied", async () => {
    const database = await createTestDatabase();
    const expected = expectedMigrationCount();
    const app = appWith(database.sql, builtin);
    try {
      expect((await readyz(app))[0]).toBe(200);

      // The last migration is not recorded as applied, as after a rollback to an older release.
      await database.sql`
        delete from drizzle.__drizzle_migrations
        where id = (select max(id) from drizzle.__drizzle_migrations)
      `;
      const [status, body] = await readyz(app);
      expect(status).toBe(503);
      expect(body.failing).toEqual(["migrations"]);
      expect(body.checks.migrations).toEqual({
        ok: false,
        error: `${expected - 1} of ${expected} migrations applied`,
      });
      expect(body.checks.database).toEqual({ ok: true });

      // A database that was never migrated.
      await database.sql`drop schema drizzle cascade`;
      const [, never] = await readyz(app);
      expect(never.checks.migrations).toEqual({
        ok: false,
        error: `0 of ${expected} migrations applied`,
      });
    } finally {
      await database.close();
    }
  });
});

const located = await locateStepCa();
if ("skip" in located) console.warn(`skipping readiness tests with step-ca: ${located.skip}`);

describe.skipIf("skip" in located)("GET /readyz with step-ca", () => {
  let stepCa: StepCaInstance;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    stepCa = await startStepCa();
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.close();
    await stepCa?.stop();
  });

  async function client(url: string) {
    return StepCa.open({
      url,
      rootPem: stepCa.rootPem,
      provisionerName: stepCa.provisionerName,
      provisionerKey: JSON.parse(await readFile(stepCa.provisionerKeyPath, "utf8")),
      oidArc: OID_ARC,
      timeoutMs: 2000,
    });
  }

  test("step-ca down: 503 naming the certificate authority, ready again once it is back", async () => {
    const proxy = await startDroppingProxy(stepCa.url);
    const ca = await client(proxy.url);
    const app = appWith(database.sql, ca);
    try {
      expect((await readyz(app))[0]).toBe(200);

      await proxy.refuse();
      const [status, body] = await readyz(app);
      expect(status).toBe(503);
      expect(body.failing).toEqual(["certificateAuthority"]);
      expect(body.checks.certificateAuthority?.ok).toBe(false);
      expect(body.checks.certificateAuthority?.error).toMatch(/unreachable|failed/);
      expect(body.checks.database).toEqual({ ok: true });

      await proxy.resume();
      expect((await readyz(app))[0]).toBe(200);
    } finally {
      await ca.close();
      await proxy.close();
    }
  });

  test("step-ca not answering: 503 after the client's timeout", async () => {
    const proxy = await startDroppingProxy(stepCa.url);
    const ca = await client(proxy.url);
    const app = appWith(database.sql, ca);
    try {
      proxy.hold(true);
      const started = Date.now();
      const [status, body] = await readyz(app);
      expect(status).toBe(503);
      expect(body.failing).toEqual(["certificateAuthority"]);
      expect(body.checks.certificateAuthority?.error).toMatch(/did not answer/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await ca.close();
      await proxy.close();
    }
  });

  test("a stopped step-ca process: 503 naming the certificate authority", async () => {
    const doomed = await startStepCa();
    const ca = await StepCa.open({
      url: doomed.url,
      rootPem: doomed.rootPem,
      provisionerName: doomed.provisionerName,
      provisionerKey: JSON.parse(await readFile(doomed.provisionerKeyPath, "utf8")),
      oidArc: OID_ARC,
    });
    const app = appWith(database.sql, ca);
    try {
      expect((await readyz(app))[0]).toBe(200);
      await doomed.stop();
      const [status, body] = await readyz(app);
      expect(status).toBe(503);
      expect(body.failing).toEqual(["certificateAuthority"]);
    } finally {
      await ca.close();
      await doomed.stop().catch(() => {});
    }
  });
});
