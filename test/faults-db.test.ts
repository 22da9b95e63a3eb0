// Breaks the database under a redeem: a connection cut inside the final transaction or right after
// its COMMIT, a backend terminated while it waits for a lock, a unique violation inside
// the transaction, and a database that cannot be reached at all. The cuts go through a loopback
// TCP proxy, which needs a PostgreSQL server; PGlite serves a single connection.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import pino from "pino";
import postgres from "postgres";
import { createApp } from "../src/app.ts";
import { createPool, type Sql } from "../src/db/connect.ts";
import { CountingCa } from "./support/counting-ca.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { usingPostgres } from "./support/database.ts";
import {
  invariantViolations,
  type SeededEnrollment,
  seedEnrollment,
  tokenRecord,
} from "./support/enrollment-state.ts";
import { createTestContext, TEST_ADMIN_SECRET, type TestContext } from "./support/harness.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

if (!usingPostgres) {
  console.warn("skipping database cuts and terminated backends: they need DATABASE_URL");
}

let ctx: TestContext;
let ca: CountingCa;

beforeAll(async () => {
  ctx = await createTestContext({
    ca: (builtin) => {
      ca = new CountingCa(builtin);
      return ca;
    },
  });
});

afterAll(async () => {
  await ctx?.close();
});

type App = ReturnType<typeof createApp>;

async function redeemThrough(app: App, enrollment: SeededEnrollment): Promise<Response> {
  const csr = await makeCsr(await generateKey(), { commonName: enrollment.peerName });
  return app.request(`/api/federation/enrollment/${enrollment.token}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ csr }),
  });
}

async function problemCode(response: Response): Promise<string> {
  return ((await response.json()) as { code: string }).code;
}

/** Lists the `reason` of each failed redeem audit row of a token, oldest first. */
async function failureReasons(tokenId: string): Promise<string[]> {
  const rows = await ctx.sql<{ reason: string }[]>`
    select detail->>'reason' as reason from federation_audit_log
    where resource_id = ${tokenId} and verb = 'enrollment.redeem' and outcome = 'failure'
    order by id
  `;
  return rows.map((row) => row.reason);
}

function lastSignedSerial(): string {
  const serial = ca.signed.at(-1)?.serialNumber;
  if (!serial) throw new Error("the CA has not signed anything yet");
  return serial;
}

function revokedSerials(): string[] {
  return ca.revoked.map((entry) => entry.serialNumber);
}

/** Expects a redeem that failed after the CA signed to have left the token as it was. */
async function expectRolledBack(enrollment: SeededEnrollment, reason: string) {
  const record = await tokenRecord(ctx.sql, enrollment.tokenId);
  expect(record.used).toBe(false);
  expect(record.claimId).toBeNull();
  expect(record.failedAttempts).toBe(1);
  expect(record.grantStatus).toBe("pending");
  expect(record.peerSerial).toBeNull();
  expect(record.successAudits).toBe(0);
  expect(await failureReasons(enrollment.tokenId)).toEqual([reason]);
  // The certificate exists at the CA but was never delivered, so it must not stay valid.
  expect(revokedSerials()).toContain(lastSignedSerial());
}

describe.skipIf(!usingPostgres)("redeem through a failing connection", () => {
  let proxy: TcpProxy;
  let proxiedSql: Sql;
  let app: App;

  beforeEach(async () => {
    proxy = await startTcpProxy({
      host: "127.0.0.1",
      port: Number(new URL(ctx.database.url).port),
    });
    // A fresh pool for each test: postgres.js parses a statement once per connection, and the
    // proxy recognizes the final transaction by the statement text it reads on the wire.
    proxiedSql = createPool(proxy.urlFor(ctx.database.url), 4);
    app = createApp({
      config: ctx.config,
      sql: proxiedSql,
      ca,
      logger: pino({ level: "silent" }),
      adminKeys: { kind: "secret", secret: TEST_ADMIN_SECRET },
      clientIp: () => "127.0.0.1",
    });
  });

  afterEach(async () => {
    await proxiedSql.end({ timeout: 1 });
    await proxy.close();
  });

  test("rolls back a transaction cut mid-way", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    // The cut comes with the first statement result after the final transaction's statements went
    // out: the server has run at least one of them, and the client has not sent COMMIT.
    const cut = proxy.cutAt([
      { direction: "to-server", text: "update federation_grants" },
      { direction: "to-client", text: "UPDATE" },
    ]);

    const response = await redeemThrough(app, enrollment);
    await cut;

    expect(response.status).toBe(503);
    expect(await problemCode(response)).toBe("database_unavailable");
    await expectRolledBack(enrollment, "database_unavailable");
    expect((await redeemThrough(app, enrollment)).status).toBe(201);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });

  test("delivers a commit whose reply was lost", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    const cut = proxy.cutAt([
      { direction: "to-server", text: "update federation_grants" },
      { direction: "to-client", text: "COMMIT" },
    ]);
    const callsBefore = ca.signCalls;

    const response = await redeemThrough(app, enrollment);
    await cut;

    expect(response.status).toBe(201);
    const body = (await response.json()) as { serialNumber: string };
    const record = await tokenRecord(ctx.sql, enrollment.tokenId);
    expect(record.certSerial).toBe(body.serialNumber);
    expect(record.peerSerial).toBe(body.serialNumber);
    expect(await failureReasons(enrollment.tokenId)).toEqual([]);
    expect(revokedSerials()).not.toContain(body.serialNumber);
    expect(ca.signCalls - callsBefore).toBe(1);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });

  test("keeps the claim when the outcome is unknown", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    const cut = proxy.cutAt([{ direction: "to-server", text: "update federation_grants" }], {
      thenRefuse: true,
    });

    const response = await redeemThrough(app, enrollment);
    await cut;

    expect(response.status).toBe(503);
    expect(await problemCode(response)).toBe("database_unavailable");
    // Nothing could be read back, so the claim stays until its lease runs out and the
    // certificate, which may have been committed, is not revoked.
    const record = await tokenRecord(ctx.sql, enrollment.tokenId);
    expect(record.used).toBe(false);
    expect(record.claimId).not.toBeNull();
    expect(record.failedAttempts).toBe(0);
    expect(revokedSerials()).not.toContain(lastSignedSerial());

    await proxy.resume();
    expect((await redeemThrough(app, enrollment)).status).toBe(410);
    await ctx.sql`
      update federation_enrollment_tokens set claim_expires_at = now() - interval '1 second'
      where id = ${enrollment.tokenId}
    `;
    expect((await redeemThrough(app, enrollment)).status).toBe(201);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });

  test("returns 503 for an unreachable database", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    const callsBefore = ca.signCalls;
    await proxy.refuse();

    const response = await redeemThrough(app, enrollment);

    expect(response.status).toBe(503);
    expect(await problemCode(response)).toBe("database_unavailable");
    const record = await tokenRecord(ctx.sql, enrollment.tokenId);
    expect(record.claimId).toBeNull();
    expect(record.failedAttempts).toBe(0);
    expect(record.failureAudits).toBe(0);
    expect(ca.signCalls).toBe(callsBefore);

    await proxy.resume();
    expect((await redeemThrough(app, enrollment)).status).toBe(201);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });
});

describe.skipIf(!usingPostgres)("redeem whose backend is terminated", () => {
  test("rolls back and releases the claim", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    const locker = postgres(ctx.database.url, { max: 1, onnotice: () => {} });
    let response: Promise<Response> | undefined;
    try {
      await locker.begin(async (tx) => {
        // Holding the grant's row lock stops the final transaction at its grant update, after
        // the token update, with the transaction open.
        await tx`select 1 from federation_grants where id = ${enrollment.grantId} for update`;
        response = redeemThrough(ctx.app, enrollment);
        const pid = await waitForBlockedBackend(ctx.sql, "update federation_grants");
        await tx`select pg_terminate_backend(${pid})`;
      });
    } finally {
      await locker.end();
    }
    const answered = await (response as Promise<Response>);

    expect(answered.status).toBe(503);
    expect(await problemCode(answered)).toBe("database_unavailable");
    await expectRolledBack(enrollment, "database_unavailable");
    expect((await redeemThrough(ctx.app, enrollment)).status).toBe(201);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });
});

/**
 * Polls pg_stat_activity for a backend waiting on a lock in a statement containing `text`. It
 * must not run inside a transaction, where pg_stat_activity stays one snapshot.
 */
async function waitForBlockedBackend(db: Sql, text: string): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const [row] = await db<{ pid: number }[]>`
      select pid from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'
        and query like ${`%${text}%`}
    `;
    if (row) return row.pid;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no backend blocked in "${text}" within 5 s`);
}

describe("redeem with a failing statement", () => {
  test("rolls back a unique violation", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    // The peer update is the third statement of the final transaction, so the token and grant
    // updates before it must be rolled back as well.
    await ctx.sql.unsafe(`
      create function test_reject_peer_serial() returns trigger language plpgsql as $$
      begin
        raise exception 'duplicate peer serial' using errcode = 'unique_violation';
      end $$;
      create trigger test_reject_peer_serial before update of cert_serial on federation_peers
        for each row when (new.id = '${enrollment.peerId}') execute function test_reject_peer_serial();
    `);
    let response: Response;
    try {
      response = await redeemThrough(ctx.app, enrollment);
    } finally {
      await ctx.sql.unsafe(`
        drop trigger test_reject_peer_serial on federation_peers;
        drop function test_reject_peer_serial();
      `);
    }

    expect(response.status).toBe(500);
    expect(await problemCode(response)).toBe("internal_error");
    await expectRolledBack(enrollment, "internal_error");
    expect((await redeemThrough(ctx.app, enrollment)).status).toBe(201);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });
});
