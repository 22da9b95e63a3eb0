// Runs the whole enrollment flow with a CA failure and database failures on the way. Then it
// searches everything the service logged, stored in the audit log or sent for secrets, in process
// and in the stdout and stderr of the service as a child process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { StepCa } from "../src/ca/step-ca/step-ca.ts";
import type { Database } from "../src/db/connect.ts";
import { hashToken } from "../src/enrollment/token-format.ts";
import { signAdminToken } from "../src/server/admin-secret.ts";
import { opensslCsr } from "./support/csr.ts";
import { createTestDatabase, usingPostgres } from "./support/database.ts";
import { type FakeStepCa, startFakeStepCa } from "./support/fake-step-ca.ts";
import { createTestContext, type TestContext, uniquePeerName } from "./support/harness.ts";
import { startService } from "./support/service-process.ts";

// step-ca cannot encode the default arc, whose last component is above 2^31 - 1.
const OID_ARC = "1.3.6.1.4.1.55555.1";
const ADMIN_SECRET = "secrets-test-admin-secret-0123456789abcdef";

/** Lists each secret in the forms it could leak in, by name. */
function secretForms(secrets: {
  token: string;
  adminJwt: string;
  peerKeyPem: string;
  provisionerD: string;
}): Record<string, string> {
  const keyBody = secrets.peerKeyPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  return {
    token: secrets.token,
    "token SHA-256": hashToken(secrets.token),
    "peer key PEM": secrets.peerKeyPem.trim(),
    "peer key base64": keyBody,
    "peer key first line": keyBody.slice(0, 64),
    "admin JWT": secrets.adminJwt,
    "admin JWT signature": secrets.adminJwt.split(".")[2] ?? secrets.adminJwt,
    "provisioner d": secrets.provisionerD,
  };
}

function expectNoSecret(place: string, text: string, secrets: Record<string, string>): void {
  for (const [name, value] of Object.entries(secrets)) {
    expect({ place, name, leaked: text.includes(value) }).toEqual({ place, name, leaked: false });
  }
}

describe("secrets in process", () => {
  let fake: FakeStepCa;
  let stepCa: StepCa;
  let ctx: TestContext;

  beforeAll(async () => {
    fake = await startFakeStepCa({ oidArc: OID_ARC });
    stepCa = await StepCa.open({
      url: fake.url,
      rootPem: fake.rootPem,
      provisionerName: fake.provisionerName,
      provisionerKey: fake.provisionerKey,
      oidArc: OID_ARC,
    });
    ctx = await createTestContext({ env: { CERT_OID_ARC: OID_ARC }, ca: () => stepCa });
  });

  afterAll(async () => {
    await ctx?.close().catch(() => {});
    await stepCa?.close();
    await fake?.stop();
  });

  test("never appear in logs, audit or responses", async () => {
    const bodies: string[] = [];
    const record = async (response: Response) => {
      const text = await response.text();
      bodies.push(text);
      return { status: response.status, text };
    };
    const adminJwt = await ctx.adminToken();
    const admin = { headers: { authorization: `Bearer ${adminJwt}` } };
    const create = async (url: string, body: unknown) => {
      const { status, text } = await record(await ctx.send("POST", url, body, admin));
      expect({ url, status }).toEqual({ url, status: 201 });
      return JSON.parse(text);
    };
    const name = uniquePeerName("secret");
    const peer = await create("/api/federation/peers", { name });
    const grant = await create("/api/federation/grants", { peerId: peer.id, scopes: ["a:b"] });
    // The one response that must carry the token; it is checked for every other secret.
    const tokenResponse = await ctx.send(
      "POST",
      "/api/federation/enrollment/tokens",
      {
        grantId: grant.id,
      },
      admin,
    );
    const tokenBody = await tokenResponse.text();
    const token: string = JSON.parse(tokenBody).token;
    const { keyPem, csrPem } = await opensslCsr(name);

    fake.mode = { kind: "status", status: 500 };
    expect((await record(await ctx.redeem(token, csrPem))).status).toBe(502);
    fake.mode = { kind: "ok" };
    expect((await record(await ctx.redeem(token, csrPem))).status).toBe(201);
    const other = await opensslCsr(name);
    expect((await record(await ctx.redeem(token, other.csrPem))).status).toBe(410);

    // A failing statement inside the final transaction of a second enrollment.
    const second = await ctx.enrollment();
    await ctx.sql.unsafe(`
      create function fail_peer_update() returns trigger language plpgsql as
        $$ begin raise exception 'injected failure'; end $$;
      create trigger fail_peer_update before update on federation_peers
        for each row execute function fail_peer_update();
    `);
    const secondKey = await opensslCsr(second.peer.name);
    const failed = await record(await ctx.redeem(second.token, secondKey.csrPem));
    expect(failed.status).toBeGreaterThanOrEqual(500);
    await ctx.sql.unsafe(`drop trigger fail_peer_update on federation_peers`);

    const auditRows = await ctx.sql`select * from federation_audit_log`;
    const auditText = JSON.stringify(auditRows);
    expect(auditRows.length).toBeGreaterThan(5);

    // Last: a pool that is closed, for errors raised by the driver itself.
    await ctx.sql.end({ timeout: 1 });
    const closed = await record(await ctx.redeem(second.token, secondKey.csrPem));
    expect(closed.status).toBe(503);

    const secrets = secretForms({
      token,
      adminJwt,
      peerKeyPem: keyPem,
      provisionerD: String(fake.provisionerKey.d),
    });
    const logs = ctx.logText();
    expect(logs).toContain("certificate signing failed");
    expect(logs).toContain("injected failure");
    expectNoSecret("logs", logs, secrets);
    expectNoSecret("audit rows", auditText, secrets);
    expectNoSecret("responses", bodies.join("\n"), secrets);
    const { token: _token, ...exceptToken } = secrets;
    expectNoSecret("token response", tokenBody, exceptToken);
  });
});

describe("secrets in service output", () => {
  let fake: FakeStepCa;
  let database: Database | undefined;
  let dir: string;

  beforeAll(async () => {
    fake = await startFakeStepCa({ oidArc: OID_ARC });
    database = usingPostgres ? await createTestDatabase() : undefined;
    dir = await mkdtemp(path.join(tmpdir(), "fe-secrets-"));
  });

  afterAll(async () => {
    await fake?.stop();
    await database?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("never appear on stdout or stderr", async () => {
    const rootFile = path.join(dir, "step-ca-root.crt");
    const keyFile = path.join(dir, "provisioner.json");
    await writeFile(rootFile, fake.rootPem);
    await writeFile(keyFile, JSON.stringify(fake.provisionerKey), { mode: 0o600 });
    const service = await startService({
      env: {
        TLS: "off",
        LOG_LEVEL: "debug",
        ADMIN_JWT_SECRET: ADMIN_SECRET,
        CERT_OID_ARC: OID_ARC,
        STEP_CA_URL: fake.url,
        STEP_CA_ROOT: rootFile,
        STEP_CA_PROVISIONER: fake.provisionerName,
        STEP_CA_PROVISIONER_KEY: keyFile,
        ...(database ? { DATABASE_URL: database.url } : {}),
      },
    });
    try {
      const adminJwt = await signAdminToken({
        secret: ADMIN_SECRET,
        subject: "secrets-test",
        scope: "federation:admin",
        ttlSeconds: 600,
      });
      const post = async (url: string, body: unknown, authorization?: string) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (authorization) headers.authorization = authorization;
        const response = await fetch(`${service.url}${url}`, {
          method: "POST",
          headers,
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(15_000),
        });
        return { status: response.status, body: await response.json() };
      };
      const auth = `Bearer ${adminJwt}`;
      const name = uniquePeerName("secret-child");
      const peer = await post("/api/federation/peers", { name }, auth);
      const grant = await post(
        "/api/federation/grants",
        { peerId: peer.body.id, scopes: ["a"] },
        auth,
      );
      const created = await post(
        "/api/federation/enrollment/tokens",
        { grantId: grant.body.id },
        auth,
      );
      const token: string = created.body.token;
      const { keyPem, csrPem } = await opensslCsr(name);
      const redeemUrl = `/api/federation/enrollment/${token}`;

      fake.mode = { kind: "status", status: 500 };
      expect((await post(redeemUrl, { csr: csrPem })).status).toBe(502);
      fake.mode = { kind: "ok" };
      expect((await post(redeemUrl, { csr: csrPem })).status).toBe(201);
      expect((await post(redeemUrl, { csr: (await opensslCsr(name)).csrPem })).status).toBe(410);
      expect((await post("/api/federation/peers", { name: "x" }, "Bearer bad.jwt.x")).status).toBe(
        401,
      );

      await service.stop();
      const output = service.output.join("\n");
      expect(output).toContain("certificate signing failed");
      expect(output).toContain("possible token leak");
      const secrets = secretForms({
        token,
        adminJwt,
        peerKeyPem: keyPem,
        provisionerD: String(fake.provisionerKey.d),
      });
      expectNoSecret("service output", output, secrets);
      expectNoSecret("service output", output, { "admin secret": ADMIN_SECRET });
    } finally {
      await service.cleanup();
    }
  });
});
