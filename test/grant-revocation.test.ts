// Revoking a grant through the admin API with the built-in CA: the grant, its tokens, its
// certificate at the CA, the peer, the audit trail, retries of a failed CA revocation, and the race
// with a redeem that is in flight.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CaError, type SignedCertificate, type SignRequest } from "../src/ca/authority.ts";
import { retryDueRevocations } from "../src/jobs/revocation-retrier.ts";
import { certRevocationSettings } from "../src/repository/revoke-grant.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { usingPostgres } from "./support/database.ts";
import { createTestContext, type Enrollment, type TestContext } from "./support/harness.ts";

let ctx: TestContext;

/** Faults for the built-in CA, patched onto the instance the app uses. */
const faults = {
  revoke: undefined as Error | undefined,
  beforeSign: undefined as ((request: SignRequest) => Promise<void>) | undefined,
  afterSign: undefined as ((signed: SignedCertificate) => Promise<void> | void) | undefined,
};
const revokeCalls: { serial: string; reason: string }[] = [];

beforeAll(async () => {
  ctx = await createTestContext({ env: { REVOCATION_RETRY_INTERVAL_SECONDS: "10" } });
  const ca = ctx.builtinCa;
  const sign = ca.sign.bind(ca);
  const revoke = ca.revoke.bind(ca);
  ca.sign = async (request) => {
    await faults.beforeSign?.(request);
    const signed = await sign(request);
    await faults.afterSign?.(signed);
    return signed;
  };
  ca.revoke = async (serial, reason) => {
    revokeCalls.push({ serial, reason });
    if (faults.revoke) throw faults.revoke;
    return revoke(serial, reason);
  };
});

afterAll(async () => {
  await ctx.close();
});

function deps() {
  return {
    sql: ctx.sql,
    ca: ctx.ca,
    logger: silentLogger,
    settings: certRevocationSettings(ctx.config),
  };
}

const silentLogger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
} as unknown as import("pino").Logger;

async function enrollAndRedeem(): Promise<{ enrollment: Enrollment; serial: string }> {
  const enrollment = await ctx.enrollment();
  const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
  const response = await ctx.redeem(enrollment.token, csr);
  expect(response.status).toBe(201);
  return { enrollment, serial: (await response.json()).serialNumber };
}

async function revoke(grantId: string, body?: unknown) {
  return ctx.send("POST", `/api/federation/grants/${grantId}/revoke`, body);
}

async function caRevocation(serial: string) {
  const [row] = await ctx.sql<{ reasonCode: number; revokedAt: Date }[]>`
    select reason_code, revoked_at from federation_ca_revocations where serial = ${serial}
  `;
  return row;
}

async function auditFor(resourceId: string) {
  const response = await ctx.send("GET", `/api/federation/audit?resourceId=${resourceId}`);
  expect(response.status).toBe(200);
  return (await response.json()).items as {
    verb: string;
    outcome: string;
    statusCode: number;
    actor: string;
    detail: Record<string, unknown>;
  }[];
}

async function newToken(grantId: string) {
  const response = await ctx.send("POST", "/api/federation/enrollment/tokens", { grantId });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; token: string };
}

describe("POST /api/federation/grants/:id/revoke", () => {
  test("revokes an active grant, its certificate at the CA, and marks the peer", async () => {
    const { enrollment, serial } = await enrollAndRedeem();
    const response = await revoke(enrollment.grant.id, { reason: "keyCompromise" });
    expect(response.status).toBe(200);
    const grant = await response.json();
    expect(grant.id).toBe(enrollment.grant.id);
    expect(grant.status).toBe("revoked");
    expect(grant.revokeReason).toBe("keyCompromise");
    expect(Date.parse(grant.revokedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(grant.certRevocation).toBe("done");
    expect(Date.parse(grant.certRevokedAt)).toBeGreaterThanOrEqual(Date.parse(grant.revokedAt));
    expect(grant.certRevocationAttempts).toBe(1);
    expect(grant.certRevocationError).toBeNull();

    // RFC 5280 keyCompromise is reason code 1.
    expect((await caRevocation(serial))?.reasonCode).toBe(1);

    const read = await (await ctx.send("GET", `/api/federation/grants/${grant.id}`)).json();
    expect(read).toEqual(grant);
    const peer = await (
      await ctx.send("GET", `/api/federation/peers/${enrollment.peer.id}`)
    ).json();
    expect(peer.certSerial).toBe(serial);
    expect(peer.certRevocationReason).toBe("keyCompromise");
    expect(Date.parse(peer.certRevokedAt)).toBe(Date.parse(grant.revokedAt));

    const audit = await auditFor(grant.id);
    const verbs = audit.map((row) => `${row.verb}:${row.outcome}`);
    expect(verbs).toContain("grant.revoke:success");
    expect(verbs).toContain("certificate.revoke:success");
    const revokedRow = audit.find((row) => row.verb === "grant.revoke");
    expect(revokedRow?.actor).toBe("test-admin");
    expect(revokedRow?.detail).toMatchObject({
      reason: "keyCompromise",
      previousStatus: "active",
      certSerial: serial,
      peerCertificateRevoked: true,
    });
    const certRow = audit.find((row) => row.verb === "certificate.revoke");
    expect(certRow?.detail).toMatchObject({ serial, attempt: 1, certRevocation: "done" });
  });

  test("defaults the reason to unspecified and accepts no body at all", async () => {
    const { enrollment, serial } = await enrollAndRedeem();
    const response = await ctx.send("POST", `/api/federation/grants/${enrollment.grant.id}/revoke`);
    expect(response.status).toBe(200);
    const grant = await response.json();
    expect(grant.revokeReason).toBe("unspecified");
    expect((await caRevocation(serial))?.reasonCode).toBe(0);

    const other = await enrollAndRedeem();
    const empty = await revoke(other.enrollment.grant.id, {});
    expect((await empty.json()).revokeReason).toBe("unspecified");
  });

  test("takes every RFC 5280 reason it lists and maps it to its code", async () => {
    const codes = {
      unspecified: 0,
      keyCompromise: 1,
      affiliationChanged: 3,
      superseded: 4,
      cessationOfOperation: 5,
      privilegeWithdrawn: 9,
    };
    for (const [reason, code] of Object.entries(codes)) {
      const { enrollment, serial } = await enrollAndRedeem();
      const response = await revoke(enrollment.grant.id, { reason });
      expect({ reason, status: response.status }).toEqual({ reason, status: 200 });
      expect({ reason, code: (await caRevocation(serial))?.reasonCode }).toEqual({ reason, code });
    }
  });

  test("rejects an unknown reason, a non-JSON body and an unknown grant", async () => {
    const { enrollment } = await enrollAndRedeem();
    const bad = await revoke(enrollment.grant.id, { reason: "cACompromise" });
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe("validation_failed");
    const extra = await revoke(enrollment.grant.id, { reason: "unspecified", force: true });
    expect(extra.status).toBe(400);
    const text = await ctx.send(
      "POST",
      `/api/federation/grants/${enrollment.grant.id}/revoke`,
      "x",
      {
        headers: { "content-type": "text/plain" },
      },
    );
    expect(text.status).toBe(415);
    const malformed = await ctx.send(
      "POST",
      `/api/federation/grants/${enrollment.grant.id}/revoke`,
      "{",
    );
    expect(malformed.status).toBe(400);
    // Nothing was revoked by the refused requests.
    const grant = await (
      await ctx.send("GET", `/api/federation/grants/${enrollment.grant.id}`)
    ).json();
    expect(grant.status).toBe("active");

    const missing = await revoke("00000000-0000-4000-8000-000000000000");
    expect(missing.status).toBe(404);
    expect((await missing.json()).code).toBe("not_found");
    expect((await revoke("not-a-uuid")).status).toBe(400);
  });

  test("requires an admin token", async () => {
    const { enrollment } = await enrollAndRedeem();
    const response = await ctx.send(
      "POST",
      `/api/federation/grants/${enrollment.grant.id}/revoke`,
      {},
      { auth: false },
    );
    expect(response.status).toBe(401);
    const wrongScope = await ctx.send(
      "POST",
      `/api/federation/grants/${enrollment.grant.id}/revoke`,
      {},
      { headers: { authorization: `Bearer ${await ctx.adminToken({ scope: "other" })}` } },
    );
    expect(wrongScope.status).toBe(403);
    const grant = await (
      await ctx.send("GET", `/api/federation/grants/${enrollment.grant.id}`)
    ).json();
    expect(grant.status).toBe("active");
  });

  test("revoking twice answers 200 with the same state and changes nothing", async () => {
    const { enrollment, serial } = await enrollAndRedeem();
    const first = await (await revoke(enrollment.grant.id, { reason: "superseded" })).json();
    const auditBefore = await auditFor(enrollment.grant.id);
    const callsBefore = revokeCalls.length;

    const again = await revoke(enrollment.grant.id, { reason: "keyCompromise" });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(first);
    expect(revokeCalls.length).toBe(callsBefore);
    expect(await auditFor(enrollment.grant.id)).toEqual(auditBefore);
    expect((await caRevocation(serial))?.reasonCode).toBe(4);
  });

  test("revokes a pending grant's unused tokens, which then answer 410", async () => {
    const enrollment = await ctx.enrollment();
    const second = await newToken(enrollment.grant.id);
    const response = await revoke(enrollment.grant.id, { reason: "cessationOfOperation" });
    expect(response.status).toBe(200);
    const grant = await response.json();
    expect(grant.status).toBe("revoked");
    // No certificate was issued, so there is nothing to revoke at the CA.
    expect(grant.certRevocation).toBeNull();
    expect(grant.certRevokedAt).toBeNull();

    for (const token of [enrollment.token, second.token]) {
      const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
      const redeemed = await ctx.redeem(token, csr);
      expect(redeemed.status).toBe(410);
      expect((await redeemed.json()).code).toBe("token_gone");
    }
    const tokens = await (
      await ctx.send("GET", `/api/federation/enrollment/tokens?grantId=${enrollment.grant.id}`)
    ).json();
    expect(tokens.items.map((token: { status: string }) => token.status)).toEqual([
      "revoked",
      "revoked",
    ]);

    // One audit row per revoked token, under the token.
    for (const tokenId of [enrollment.tokenId, second.id]) {
      const rows = await auditFor(tokenId);
      const revokedRow = rows.find((row) => row.verb === "token.revoke");
      expect(revokedRow?.detail).toEqual({ grantId: enrollment.grant.id, cause: "grant_revoked" });
    }
    const grantRow = (await auditFor(enrollment.grant.id)).find(
      (row) => row.verb === "grant.revoke",
    );
    expect([...((grantRow?.detail.tokensRevoked as string[]) ?? [])].sort()).toEqual(
      [enrollment.tokenId, second.id].sort(),
    );

    // A revoked grant takes no new tokens either.
    const refused = await ctx.send("POST", "/api/federation/enrollment/tokens", {
      grantId: enrollment.grant.id,
    });
    expect(refused.status).toBe(409);
  });

  test("revokes unused tokens left on an active grant", async () => {
    // Tokens cannot be created for an active grant, so this one was created while it was pending.
    const enrollment = await ctx.enrollment();
    const spare = await newToken(enrollment.grant.id);
    const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
    expect((await ctx.redeem(enrollment.token, csr)).status).toBe(201);
    await revoke(enrollment.grant.id);
    const redeemed = await ctx.redeem(
      spare.token,
      await makeCsr(await generateKey(), { commonName: enrollment.peer.name }),
    );
    expect(redeemed.status).toBe(410);
  });

  test("a new certificate for the peer clears the peer's revocation", async () => {
    const { enrollment } = await enrollAndRedeem();
    await revoke(enrollment.grant.id, { reason: "superseded" });
    const grant = await (
      await ctx.send("POST", "/api/federation/grants", {
        peerId: enrollment.peer.id,
        scopes: ["orders:read"],
      })
    ).json();
    const token = await newToken(grant.id);
    const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
    const issued = await (await ctx.redeem(token.token, csr)).json();
    const peer = await (
      await ctx.send("GET", `/api/federation/peers/${enrollment.peer.id}`)
    ).json();
    expect(peer.certSerial).toBe(issued.serialNumber);
    expect(peer.certRevokedAt).toBeNull();
    expect(peer.certRevocationReason).toBeNull();
  });
});

describe("a CA revocation that fails", () => {
  test("leaves the grant revoked, the CA revocation pending, and is retried until it succeeds", async () => {
    const { enrollment, serial } = await enrollAndRedeem();
    faults.revoke = new CaError("unavailable", "step-ca is down for maintenance (secret detail)");
    try {
      const response = await revoke(enrollment.grant.id, { reason: "affiliationChanged" });
      expect(response.status).toBe(200);
      const grant = await response.json();
      expect(grant.status).toBe("revoked");
      expect(grant.certRevocation).toBe("pending");
      expect(grant.certRevokedAt).toBeNull();
      expect(grant.certRevocationAttempts).toBe(1);
      expect(grant.certRevocationError).toBe("ca_unavailable");
      // The first retry waits one interval (10 s in this suite).
      const wait = Date.parse(grant.certRevocationNextAt) - Date.now();
      expect(wait).toBeGreaterThan(7_000);
      expect(wait).toBeLessThan(11_000);
      expect(JSON.stringify(grant)).not.toContain("secret detail");
      expect(await caRevocation(serial)).toBeUndefined();

      // The grant is revoked in the database although the CA did not revoke the certificate.
      const token = await newToken(enrollment.grant.id).catch(() => undefined);
      expect(token).toBeUndefined();

      const audit = await auditFor(enrollment.grant.id);
      const failed = audit.find((row) => row.verb === "certificate.revoke");
      expect(failed?.outcome).toBe("failure");
      expect(failed?.statusCode).toBe(503);
      expect(failed?.detail).toMatchObject({
        serial,
        attempt: 1,
        error: "ca_unavailable",
        certRevocation: "pending",
      });

      // Not due yet: a round does nothing.
      expect((await retryDueRevocations(deps())).attempted).toBe(0);

      // Due, and still failing: counted, and the backoff doubles.
      await makeDue(enrollment.grant.id);
      const second = await retryDueRevocations(deps());
      expect(second).toEqual({ attempted: 1, revoked: 0, failed: 1 });
      const afterSecond = await readGrant(enrollment.grant.id);
      expect(afterSecond.certRevocationAttempts).toBe(2);
      const secondWait = Date.parse(afterSecond.certRevocationNextAt) - Date.now();
      expect(secondWait).toBeGreaterThan(17_000);
      expect(secondWait).toBeLessThan(21_000);
    } finally {
      faults.revoke = undefined;
    }

    await makeDue(enrollment.grant.id);
    expect(await retryDueRevocations(deps())).toEqual({ attempted: 1, revoked: 1, failed: 0 });
    const done = await readGrant(enrollment.grant.id);
    expect(done.certRevocation).toBe("done");
    expect(done.certRevocationAttempts).toBe(3);
    expect(done.certRevocationError).toBeNull();
    expect(done.certRevocationNextAt).toBeNull();
    expect(Date.parse(done.certRevokedAt)).toBeGreaterThan(Date.parse(done.revokedAt));
    expect((await caRevocation(serial))?.reasonCode).toBe(3);

    const attempts = (await auditFor(enrollment.grant.id))
      .filter((row) => row.verb === "certificate.revoke")
      .reverse();
    expect(attempts.map((row) => [row.outcome, row.detail.attempt, row.actor])).toEqual([
      ["failure", 1, "test-admin"],
      ["failure", 2, "system:revocation-retrier"],
      ["success", 3, "system:revocation-retrier"],
    ]);

    // Done revocations are never taken again.
    await ctx.sql`update federation_grants set cert_revocation_next_at = now() - interval '1 hour' where id = ${enrollment.grant.id}`;
    expect((await retryDueRevocations(deps())).attempted).toBe(0);
  });

  test("backs off exponentially up to the configured maximum", async () => {
    const { enrollment } = await enrollAndRedeem();
    faults.revoke = new CaError("timeout", "slow");
    const settings = { leaseSeconds: 30, retryIntervalSeconds: 10, maxBackoffSeconds: 25 };
    try {
      await revoke(enrollment.grant.id);
      const waits: number[] = [];
      for (let round = 0; round < 3; round += 1) {
        await makeDue(enrollment.grant.id);
        await retryDueRevocations({ ...deps(), settings });
        const grant = await readGrant(enrollment.grant.id);
        expect(grant.certRevocationError).toBe("ca_timeout");
        waits.push(Math.round((Date.parse(grant.certRevocationNextAt) - Date.now()) / 1000));
      }
      // Attempts 2, 3 and 4 wait 20 s, 40 s capped to 25 s, and 25 s.
      expect(waits).toEqual([20, 25, 25]);
    } finally {
      faults.revoke = undefined;
    }
  });

  test("a leased revocation is not taken twice, and concurrent rounds split the work", async () => {
    const pending: { grantId: string; serial: string }[] = [];
    faults.revoke = new CaError("unavailable", "down");
    try {
      for (let i = 0; i < 6; i += 1) {
        const { enrollment, serial } = await enrollAndRedeem();
        await revoke(enrollment.grant.id);
        pending.push({ grantId: enrollment.grant.id, serial });
      }
    } finally {
      faults.revoke = undefined;
    }
    for (const { grantId } of pending) await makeDue(grantId);

    const serials = new Set(pending.map((item) => item.serial));
    const callsBefore = revokeCalls.length;
    // Each CA call takes a while, so that the rounds overlap.
    const slowRevoke = ctx.builtinCa.revoke;
    ctx.builtinCa.revoke = async (serial, reason) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return slowRevoke(serial, reason);
    };
    try {
      const rounds = await Promise.all([
        retryDueRevocations(deps(), 4),
        retryDueRevocations(deps(), 4),
        retryDueRevocations(deps(), 4),
      ]);
      const attempted = rounds.reduce((sum, round) => sum + round.attempted, 0);
      expect(attempted).toBe(6);
      // A round that starts while the others hold their leases finds nothing due.
      expect((await retryDueRevocations(deps())).attempted).toBe(0);
    } finally {
      ctx.builtinCa.revoke = slowRevoke;
    }
    const calls = revokeCalls.slice(callsBefore).filter((call) => serials.has(call.serial));
    expect(calls.map((call) => call.serial).sort()).toEqual([...serials].sort());
    for (const { grantId, serial } of pending) {
      expect((await readGrant(grantId)).certRevocation).toBe("done");
      expect(await caRevocation(serial)).toBeDefined();
    }
  });

  test("an attempt whose holder died is taken over once its lease ran out", async () => {
    const { enrollment } = await enrollAndRedeem();
    faults.revoke = new CaError("unavailable", "down");
    try {
      await revoke(enrollment.grant.id);
    } finally {
      faults.revoke = undefined;
    }
    // Taken by an instance that then died: the lease holds it for leaseSeconds.
    await makeDue(enrollment.grant.id);
    await ctx.sql`
      update federation_grants set cert_revocation_next_at = now() + interval '30 seconds'
      where id = ${enrollment.grant.id}
    `;
    expect((await retryDueRevocations(deps())).attempted).toBe(0);
    await makeDue(enrollment.grant.id);
    expect((await retryDueRevocations(deps())).revoked).toBe(1);
  });
});

async function makeDue(grantId: string) {
  await ctx.sql`
    update federation_grants set cert_revocation_next_at = now() - interval '1 second'
    where id = ${grantId} and cert_revocation = 'pending'
  `;
}

async function readGrant(grantId: string) {
  const response = await ctx.send("GET", `/api/federation/grants/${grantId}`);
  expect(response.status).toBe(200);
  return response.json();
}

describe("a revoke that races a redeem", () => {
  test("a revoke while the CA signs wins: nothing is delivered and the signed certificate is revoked", async () => {
    const enrollment = await ctx.enrollment();
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let signing = () => {};
    const signStarted = new Promise<void>((resolve) => {
      signing = resolve;
    });
    let signed: SignedCertificate | undefined;
    faults.beforeSign = async () => {
      signing();
      await held;
    };
    faults.afterSign = (certificate) => {
      signed = certificate;
    };
    try {
      const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
      const redeemed = ctx.redeem(enrollment.token, csr);
      await signStarted;
      const revoked = await revoke(enrollment.grant.id, { reason: "keyCompromise" });
      expect(revoked.status).toBe(200);
      const grant = await revoked.json();
      expect(grant.status).toBe("revoked");
      // The token was claimed but unused, so no certificate belonged to the grant yet.
      expect(grant.certRevocation).toBeNull();
      release();
      const response = await redeemed;
      expect(response.status).toBe(410);
    } finally {
      faults.beforeSign = undefined;
      faults.afterSign = undefined;
      release();
    }
    expect((await readGrant(enrollment.grant.id)).status).toBe("revoked");
    expect(signed).toBeDefined();
    // The undelivered certificate was revoked as superseded.
    expect((await caRevocation(signed?.serialNumber as string))?.reasonCode).toBe(4);
    const peer = await (
      await ctx.send("GET", `/api/federation/peers/${enrollment.peer.id}`)
    ).json();
    expect(peer.certSerial).toBeNull();
  });

  test("a revoke that arrives while the redeem commits waits for it and revokes its certificate", async () => {
    // Widens the window inside redeem's final transaction: after the token row is marked used
    // (and locked) and before the grant is activated. A revoke that locked the grant first and the
    // tokens second would deadlock with it here.
    await ctx.sql.unsafe(`
      create or replace function fe_test_slow_redeem() returns trigger language plpgsql as $$
      begin
        if new.used_at is not null and old.used_at is null then perform pg_sleep(0.4); end if;
        return new;
      end $$;
      create trigger fe_test_slow_redeem after update on federation_enrollment_tokens
        for each row execute function fe_test_slow_redeem();
    `);
    try {
      const enrollment = await ctx.enrollment();
      let signedSerial = "";
      let committing = () => {};
      const finalizing = new Promise<void>((resolve) => {
        committing = resolve;
      });
      faults.afterSign = (certificate) => {
        signedSerial = certificate.serialNumber;
        committing();
      };
      const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
      const redeemed = ctx.redeem(enrollment.token, csr);
      await finalizing;
      await new Promise((resolve) => setTimeout(resolve, 100));
      const [revoked, response] = await Promise.all([
        revoke(enrollment.grant.id, { reason: "keyCompromise" }),
        redeemed,
      ]);
      expect(response.status).toBe(201);
      expect((await response.json()).serialNumber).toBe(signedSerial);
      expect(revoked.status).toBe(200);
      const grant = await revoked.json();
      expect(grant.status).toBe("revoked");
      expect(grant.certRevocation).toBe("done");
      expect((await caRevocation(signedSerial))?.reasonCode).toBe(1);
    } finally {
      faults.afterSign = undefined;
      await ctx.sql.unsafe(`
        drop trigger if exists fe_test_slow_redeem on federation_enrollment_tokens;
        drop function if exists fe_test_slow_redeem();
      `);
    }
  });

  test("concurrent redeems and revokes never leave an active grant or a live delivered certificate", async () => {
    const rounds = usingPostgres ? 24 : 12;
    // Revokes start from at once to well after the redeem, so that either may come first.
    const delays = [0, 5, 15, 30, 60, 120];
    const signedSerials: string[] = [];
    faults.beforeSign = async () => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10));
    };
    faults.afterSign = (certificate) => {
      signedSerials.push(certificate.serialNumber);
    };
    const results: { grantId: string; redeem: number; serial?: string; revoke: number }[] = [];
    try {
      // Four at a time, each a redeem and a revoke of one grant.
      const race = async (index: number) => {
        const enrollment = await ctx.enrollment();
        const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
        const revokeDelay = delays[index % delays.length] as number;
        const [redeemed, revoked] = await Promise.all([
          ctx.redeem(enrollment.token, csr),
          new Promise((resolve) => setTimeout(resolve, revokeDelay)).then(() =>
            revoke(enrollment.grant.id, { reason: "privilegeWithdrawn" }),
          ),
        ]);
        const body = await redeemed.json();
        results.push({
          grantId: enrollment.grant.id,
          redeem: redeemed.status,
          serial: body.serialNumber,
          revoke: revoked.status,
        });
      };
      for (let index = 0; index < rounds; index += 4) {
        await Promise.all([0, 1, 2, 3].map((offset) => race(index + offset)));
      }
    } finally {
      faults.beforeSign = undefined;
      faults.afterSign = undefined;
    }
    for (const result of results) {
      expect([201, 410]).toContain(result.redeem);
      expect(result.revoke).toBe(200);
      const grant = await readGrant(result.grantId);
      expect(grant.status).toBe("revoked");
      if (result.redeem === 201) {
        // Delivered, so the revoke came second and revoked it at the CA.
        expect(grant.certRevocation).toBe("done");
        expect((await caRevocation(result.serial as string))?.reasonCode).toBe(9);
      } else {
        expect(grant.certRevocation).toBeNull();
      }
    }
    // Every certificate the CA signed for these grants is revoked, delivered or not.
    const revoked = await ctx.sql<{ serial: string }[]>`
      select serial from federation_ca_revocations where serial = any(${signedSerials}::text[])
    `;
    expect(revoked.map((row) => row.serial).sort()).toEqual([...signedSerials].sort());
  });
});
