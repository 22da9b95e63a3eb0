import { afterAll, afterEach, beforeAll, describe, expect, setSystemTime, test } from "bun:test";
import { CaError } from "../src/ca/authority.ts";
import { CountingCa, gate } from "./support/counting-ca.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { usingPostgres } from "./support/database.ts";
import { createTestContext, type Enrollment, type TestContext } from "./support/harness.ts";

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

afterEach(() => {
  ca.beforeSign = undefined;
  setSystemTime();
});

afterAll(async () => {
  await ctx.close();
});

async function csrFor(enrollment: Enrollment): Promise<string> {
  return makeCsr(await generateKey(), { commonName: enrollment.peer.name });
}

async function tokenRow(id: string) {
  const [row] = await ctx.sql`
    select claim_id, used_at, failed_attempts, cert_serial
    from federation_enrollment_tokens where id = ${id}
  `;
  return row as {
    claimId: string | null;
    usedAt: Date | null;
    failedAttempts: number;
    certSerial: string | null;
  };
}

async function grantStatus(id: string): Promise<string> {
  const [row] = await ctx.sql`select status from federation_grants where id = ${id}`;
  return row?.status;
}

async function peerSerial(id: string): Promise<string | null> {
  const [row] = await ctx.sql`select cert_serial from federation_peers where id = ${id}`;
  return row?.certSerial ?? null;
}

/** Flips the last byte of the DER, which lies inside the signature, so parsing still succeeds. */
function corruptSignature(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
  der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
  const body = der.toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN CERTIFICATE REQUEST-----\n${body.trimEnd()}\n-----END CERTIFICATE REQUEST-----\n`;
}

describe("claim before the CA call", () => {
  test("gives one certificate to two racing redeems", async () => {
    const enrollment = await ctx.enrollment();
    const before = ca.signCalls;
    const [first, second] = await Promise.all([
      ctx.redeem(enrollment.token, await csrFor(enrollment)),
      ctx.redeem(enrollment.token, await csrFor(enrollment)),
    ]);
    const statuses = [first?.status, second?.status].sort();
    expect(statuses).toEqual([201, 410]);
    expect(ca.signCalls - before).toBe(1);
  });

  test("holds no transaction open during the CA call", async () => {
    const enrollment = await ctx.enrollment();
    let lockedDuringSign = false;
    ca.beforeSign = async () => {
      // NOWAIT fails at once if the redeem still held a row lock in an open transaction.
      await ctx.sql.begin(async (tx) => {
        await tx`
          select id from federation_enrollment_tokens where id = ${enrollment.tokenId}
          for update nowait
        `;
        lockedDuringSign = true;
      });
    };
    const response = await ctx.redeem(enrollment.token, await csrFor(enrollment));
    expect(response.status).toBe(201);
    expect(lockedDuringSign).toBe(true);
  });
});

describe("one transaction", () => {
  test("rolls back every write when one fails", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.sql.unsafe(`
      create or replace function fail_redeem_audit() returns trigger language plpgsql as $$
      begin
        if new.verb = 'enrollment.redeem' and new.outcome = 'success' then
          raise exception 'injected audit failure';
        end if;
        return new;
      end $$;
      create trigger fail_redeem_audit before insert on federation_audit_log
        for each row execute function fail_redeem_audit();
    `);
    try {
      const response = await ctx.redeem(enrollment.token, await csrFor(enrollment));
      expect(response.status).toBe(500);
      expect((await response.json()).code).toBe("internal_error");
      expect(await grantStatus(enrollment.grant.id)).toBe("pending");
      expect(await peerSerial(enrollment.peer.id)).toBeNull();
      const token = await tokenRow(enrollment.tokenId);
      expect(token.usedAt).toBeNull();
      expect(token.certSerial).toBeNull();
      expect(token.claimId).toBeNull();
    } finally {
      await ctx.sql.unsafe("drop trigger fail_redeem_audit on federation_audit_log");
    }
    const retry = await ctx.redeem(enrollment.token, await csrFor(enrollment));
    expect(retry.status).toBe(201);
    expect(await grantStatus(enrollment.grant.id)).toBe("active");
  });
});

describe("CA failure", () => {
  const cases = [
    { kind: "unavailable", status: 503, code: "ca_unavailable" },
    { kind: "timeout", status: 504, code: "ca_timeout" },
    { kind: "bad_response", status: 502, code: "ca_error" },
    { kind: "rejected", status: 502, code: "ca_rejected" },
  ] as const;

  for (const { kind, status, code } of cases) {
    test(`releases the claim after ${kind}`, async () => {
      const enrollment = await ctx.enrollment();
      ca.beforeSign = () => {
        throw new CaError(kind, `injected ${kind} with an upstream secret message`);
      };
      const response = await ctx.redeem(enrollment.token, await csrFor(enrollment));
      expect(response.status).toBe(status);
      const problem = await response.json();
      expect(problem.code).toBe(code);
      expect(JSON.stringify(problem)).not.toContain("upstream secret");

      const token = await tokenRow(enrollment.tokenId);
      expect(token.claimId).toBeNull();
      expect(token.usedAt).toBeNull();
      expect(token.failedAttempts).toBe(1);
      expect(await grantStatus(enrollment.grant.id)).toBe("pending");
      const [audit] = await ctx.sql`
        select outcome, status_code from federation_audit_log
        where resource_id = ${enrollment.tokenId} and verb = 'enrollment.redeem'
      `;
      expect(audit?.outcome).toBe("failure");
      expect(audit?.statusCode).toBe(status);

      ca.beforeSign = undefined;
      const retry = await ctx.redeem(enrollment.token, await csrFor(enrollment));
      expect(retry.status).toBe(201);
    });
  }

  test("locks the token after repeated failures", async () => {
    const enrollment = await ctx.enrollment();
    ca.beforeSign = () => {
      throw new CaError("unavailable", "injected");
    };
    for (let attempt = 0; attempt < ctx.config.TOKEN_MAX_FAILED_ATTEMPTS; attempt++) {
      expect((await ctx.redeem(enrollment.token, await csrFor(enrollment))).status).toBe(503);
    }
    ca.beforeSign = undefined;
    const before = ca.signCalls;
    expect((await ctx.redeem(enrollment.token, await csrFor(enrollment))).status).toBe(410);
    expect(ca.signCalls).toBe(before);
  });
});

describe("claim lease", () => {
  test("refuses a token claimed by a live request", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.sql`
      update federation_enrollment_tokens
      set claim_id = gen_random_uuid(), claim_expires_at = now() + interval '1 hour'
      where id = ${enrollment.tokenId}
    `;
    const before = ca.signCalls;
    expect((await ctx.redeem(enrollment.token, await csrFor(enrollment))).status).toBe(410);
    expect(ca.signCalls).toBe(before);
  });

  test("reclaims a claim whose lease ran out", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.sql`
      update federation_enrollment_tokens
      set claim_id = gen_random_uuid(), claim_expires_at = now() - interval '1 second'
      where id = ${enrollment.tokenId}
    `;
    expect((await ctx.redeem(enrollment.token, await csrFor(enrollment))).status).toBe(201);
  });

  test("never delivers a late finisher's certificate", async () => {
    const enrollment = await ctx.enrollment();
    const held = gate();
    const signing = gate();
    let holdNext = true;
    ca.beforeSign = async () => {
      if (!holdNext) return;
      holdNext = false;
      signing.open();
      await held.promise;
    };
    const late = ctx.redeem(enrollment.token, await csrFor(enrollment));
    await signing.promise;
    await ctx.sql`
      update federation_enrollment_tokens set claim_expires_at = now() - interval '1 second'
      where id = ${enrollment.tokenId}
    `;
    const takeover = await ctx.redeem(enrollment.token, await csrFor(enrollment));
    expect(takeover.status).toBe(201);
    const delivered = await takeover.json();
    held.open();
    const lateResponse = await late;
    expect(lateResponse.status).toBe(410);

    const undelivered = ca.signed.at(-1)?.serialNumber ?? "";
    expect(undelivered).not.toBe(delivered.serialNumber);
    expect(ca.revoked.map((entry) => entry.serialNumber)).toContain(undelivered);
    expect(await peerSerial(enrollment.peer.id)).toBe(delivered.serialNumber);
    expect((await tokenRow(enrollment.tokenId)).certSerial).toBe(delivered.serialNumber);
  });
});

describe("CSR checks before the claim", () => {
  test("rejects an invalid CSR without claiming", async () => {
    const enrollment = await ctx.enrollment();
    const key = await generateKey();
    const cases = [
      await makeCsr(key, { commonName: "someone-else" }),
      await makeCsr(key, { sans: [{ type: "dns", value: "evil.example.org" }] }),
      corruptSignature(await csrFor(enrollment)),
      "not a csr",
    ];
    const before = ca.signCalls;
    for (const csr of cases) {
      const response = await ctx.redeem(enrollment.token, csr);
      expect(response.status).toBe(400);
      expect((await response.json()).code).toBe("invalid_csr");
      expect((await tokenRow(enrollment.tokenId)).claimId).toBeNull();
    }
    expect(ca.signCalls).toBe(before);
    expect((await tokenRow(enrollment.tokenId)).failedAttempts).toBe(cases.length);
    expect((await ctx.redeem(enrollment.token, await csrFor(enrollment))).status).toBe(201);
  });

  test("counts concurrent failures only to the limit", async () => {
    const enrollment = await ctx.enrollment();
    const wrong = await makeCsr(await generateKey(), { commonName: "someone-else" });
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => ctx.redeem(enrollment.token, wrong)),
    );
    const invalid = responses.filter((response) => response.status === 400).length;
    const gone = responses.filter((response) => response.status === 410).length;
    expect(invalid).toBeLessThanOrEqual(ctx.config.TOKEN_MAX_FAILED_ATTEMPTS);
    expect(invalid + gone).toBe(20);
    expect((await tokenRow(enrollment.tokenId)).failedAttempts).toBe(invalid);
  });

  test("takes identity from the database", async () => {
    const enrollment = await ctx.enrollment();
    const csr = await makeCsr(await generateKey(), {
      sans: [{ type: "url", value: `urn:uuid:${enrollment.peer.id}` }],
    });
    const response = await ctx.redeem(enrollment.token, csr);
    expect(response.status).toBe(201);
    const body = await response.json();
    expect(body.peer.name).toBe(enrollment.peer.name);
    expect(ca.signed.at(-1)?.certificatePem).toBe(body.certificate);
  });
});

describe("expiry", () => {
  // PGlite runs inside this process and reads the clock that setSystemTime moves, so the two clocks
  // can only be told apart on a PostgreSQL server.
  test.skipIf(!usingPostgres)("follows the database clock, not the process clock", async () => {
    const valid = await ctx.enrollment();
    const expired = await ctx.enrollment();
    await ctx.sql`
      update federation_enrollment_tokens set expires_at = now() - interval '1 second'
      where id = ${expired.tokenId}
    `;
    const validCsr = await csrFor(valid);
    const expiredCsr = await csrFor(expired);

    setSystemTime(new Date(Date.now() + 2 * 24 * 3600 * 1000));
    expect((await ctx.redeem(valid.token, validCsr)).status).toBe(201);
    setSystemTime(new Date(Date.now() - 2 * 24 * 3600 * 1000));
    expect((await ctx.redeem(expired.token, expiredCsr)).status).toBe(410);
  });
});
