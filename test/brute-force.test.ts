import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateToken, hashToken } from "../src/enrollment/token-format.ts";
import { badChecksumToken, corpusPem } from "./support/corpus.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

const MAX_FAILED_ATTEMPTS = 3;
const LEAK_MESSAGE = "enrollment token presented again; possible token leak";

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext({
    env: { TOKEN_MAX_FAILED_ATTEMPTS: String(MAX_FAILED_ATTEMPTS) },
  });
});

afterAll(async () => {
  await ctx.close();
});

async function validCsr(peerName: string): Promise<string> {
  return makeCsr(await generateKey(), { commonName: peerName });
}

/** Creates an enrollment and redeems its token once. */
async function usedEnrollment() {
  const enrollment = await ctx.enrollment();
  const response = await ctx.redeem(enrollment.token, await validCsr(enrollment.peer.name));
  expect(response.status).toBe(201);
  return enrollment;
}

async function auditRows(resourceId: string): Promise<Record<string, unknown>[]> {
  const response = await ctx.send("GET", `/api/federation/audit?resourceId=${resourceId}`);
  return (await response.json()).items;
}

function withoutRequestId(body: Record<string, unknown>): Record<string, unknown> {
  const { requestId: _requestId, ...rest } = body;
  return rest;
}

describe("token failure counter", () => {
  test("locks after repeated invalid CSRs", async () => {
    const enrollment = await ctx.enrollment();
    const invalid = corpusPem("ec-p256-foreign-cn.csr.pem");
    for (let attempt = 1; attempt <= MAX_FAILED_ATTEMPTS; attempt++) {
      const response = await ctx.redeem(enrollment.token, invalid);
      expect({ attempt, status: response.status }).toEqual({ attempt, status: 400 });
    }
    const locked = await ctx.redeem(enrollment.token, await validCsr(enrollment.peer.name));
    expect(locked.status).toBe(410);
    expect((await locked.json()).code).toBe("token_gone");

    const listing = await ctx.send(
      "GET",
      `/api/federation/enrollment/tokens?grantId=${enrollment.grant.id}`,
    );
    const [token] = (await listing.json()).items;
    expect(token.failedAttempts).toBe(MAX_FAILED_ATTEMPTS);
    expect(token.usedAt).toBeNull();
    const reasons = (await auditRows(enrollment.tokenId)).map(
      (row) => (row.detail as { reason?: string }).reason,
    );
    expect(reasons).toContain("too_many_failed_attempts");
  });

  test("counts failures per token", async () => {
    const first = await ctx.enrollment();
    const second = await ctx.enrollment();
    const invalid = corpusPem("rsa-1024.csr.pem");
    for (let attempt = 0; attempt < MAX_FAILED_ATTEMPTS; attempt++) {
      await ctx.redeem(first.token, invalid);
    }
    const response = await ctx.redeem(second.token, await validCsr(second.peer.name));
    expect(response.status).toBe(201);
  });
});

describe("unknown token answers", () => {
  test("are identical whatever is wrong", async () => {
    const csr = corpusPem("ec-p256-valid.csr.pem");
    const tokens = {
      unknown: generateToken(),
      badChecksum: badChecksumToken(),
      badPrefix: `fedtak_${generateToken().slice(7)}`,
      tooShort: generateToken().slice(0, 30),
      badCharset: `fedtok_${"-".repeat(49)}`,
    };
    const answers: Record<string, unknown> = {};
    for (const [kind, token] of Object.entries(tokens)) {
      const response = await ctx.redeem(token, csr);
      answers[kind] = {
        status: response.status,
        contentType: response.headers.get("content-type"),
        body: withoutRequestId(await response.json()),
      };
    }
    for (const kind of Object.keys(tokens)) expect(answers[kind]).toEqual(answers.unknown);
    expect(answers.unknown).toMatchObject({ status: 404, body: { code: "token_not_found" } });
  });

  test("are audited without the token", async () => {
    const token = generateToken();
    const before = ctx.logs.length;
    const response = await ctx.redeem(token, corpusPem("ec-p256-valid.csr.pem"));
    const { requestId } = await response.json();
    const rows = await ctx.sql`
      select outcome, detail from federation_audit_log where request_id = ${requestId}
    `;
    expect(rows.length).toBe(1);
    expect(rows[0]?.outcome).toBe("denied");
    expect(rows[0]?.detail).toEqual({ reason: "unknown_token" });
    const logged = JSON.stringify(ctx.logs.slice(before));
    expect(logged).not.toContain(token);
    expect(logged).not.toContain(hashToken(token));
  });
});

/** Returns the first and third quartiles of a sample. */
function quartiles(samples: number[]): [number, number] {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (fraction: number) => sorted[Math.floor(fraction * (sorted.length - 1))] as number;
  return [at(0.25), at(0.75)];
}

describe("redeem latency", () => {
  // A correctness property, not a speed limit: the middle half of the latencies of well-formed
  // unknown tokens must overlap that of used tokens, or a client could tell which tokens exist.
  // Mistyped tokens are left out: they fail the public checksum before any query, by design.
  test("overlaps for unknown and used", async () => {
    const ROUNDS = 40;
    const used = await Promise.all([usedEnrollment(), usedEnrollment()]);
    const csr = await validCsr("timing.example");
    const kinds: Record<string, () => string> = {
      used: () => (used[Math.floor(Math.random() * used.length)] as { token: string }).token,
      unknown: () => generateToken(),
    };
    const samples: Record<string, number[]> = Object.fromEntries(
      Object.keys(kinds).map((kind) => [kind, []]),
    );
    for (let round = -3; round < ROUNDS; round++) {
      for (const [kind, token] of Object.entries(kinds)) {
        const started = performance.now();
        const response = await ctx.redeem(token(), csr);
        await response.arrayBuffer();
        // The first rounds warm up code paths and connections and are not counted.
        if (round >= 0) samples[kind]?.push(performance.now() - started);
      }
    }
    const [usedLow, usedHigh] = quartiles(samples.used ?? []);
    for (const kind of ["unknown"]) {
      const [low, high] = quartiles(samples[kind] ?? []);
      const overlap = { kind, overlaps: low <= usedHigh && usedLow <= high };
      expect({ ...overlap, low, high, usedLow, usedHigh }).toMatchObject({ kind, overlaps: true });
    }
  });
});

describe("token leak signal", () => {
  test("audits a used token again", async () => {
    const enrollment = await usedEnrollment();
    const response = await ctx.redeem(enrollment.token, await validCsr(enrollment.peer.name));
    expect(response.status).toBe(410);

    const rows = await auditRows(enrollment.tokenId);
    const leak = rows.find((row) => row.outcome === "possible_token_leak");
    expect(leak?.statusCode).toBe(410);
    expect((leak?.detail as { reason?: string } | undefined)?.reason).toBe("used");
    const warning = ctx.logs.find(
      (entry) => entry.msg === LEAK_MESSAGE && entry.tokenId === enrollment.tokenId,
    );
    expect(warning?.level).toBe(40);
    expect(ctx.logText()).not.toContain(enrollment.token);
    expect(ctx.logText()).not.toContain(hashToken(enrollment.token));
  });

  test("audits a revoked token again", async () => {
    const enrollment = await ctx.enrollment();
    const revoked = await ctx.send(
      "DELETE",
      `/api/federation/enrollment/tokens/${enrollment.tokenId}`,
    );
    expect(revoked.status).toBe(204);
    const response = await ctx.redeem(enrollment.token, await validCsr(enrollment.peer.name));
    expect(response.status).toBe(410);

    const rows = await auditRows(enrollment.tokenId);
    const leak = rows.find((row) => row.outcome === "possible_token_leak");
    expect((leak?.detail as { reason?: string } | undefined)?.reason).toBe("revoked");
    const warning = ctx.logs.find(
      (entry) => entry.msg === LEAK_MESSAGE && entry.tokenId === enrollment.tokenId,
    );
    expect(warning?.level).toBe(40);
    expect(ctx.logText()).not.toContain(enrollment.token);
    expect(ctx.logText()).not.toContain(hashToken(enrollment.token));
  });
});
