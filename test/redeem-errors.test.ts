import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateToken } from "../src/enrollment/token-format.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { CLIENT_IP_HEADER, createTestContext, type TestContext } from "./support/harness.ts";

let ctx: TestContext;
let limited: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
  limited = await createTestContext({
    env: { REDEEM_RATE_LIMIT: "3", REDEEM_RATE_WINDOW_SECONDS: "60" },
  });
});

afterAll(async () => {
  await ctx.close();
  await limited.close();
});

async function validCsr(): Promise<string> {
  return makeCsr(await generateKey());
}

async function expectProblem(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const problem = await response.json();
  expect(problem.code).toBe(code);
  expect(problem.status).toBe(status);
  expect(problem.requestId).toBe(response.headers.get("x-request-id"));
  return problem;
}

describe("redeem errors", () => {
  test("answers 404 for an unknown token", async () => {
    await expectProblem(
      await ctx.redeem(generateToken(), await validCsr()),
      404,
      "token_not_found",
    );
  });

  test("answers 404 for a malformed token", async () => {
    const token = generateToken();
    const mistyped = `${token.slice(0, 20)}${token[20] === "a" ? "b" : "a"}${token.slice(21)}`;
    await expectProblem(await ctx.redeem(mistyped, await validCsr()), 404, "token_not_found");
    await expectProblem(await ctx.redeem("fedtok_short", await validCsr()), 404, "token_not_found");
  });

  test("rejects a mistyped token before any query", async () => {
    const offline = await createTestContext();
    await offline.sql.end();
    try {
      const token = generateToken();
      const mistyped = `${token.slice(0, -1)}${token.endsWith("a") ? "b" : "a"}`;
      await expectProblem(await offline.redeem(mistyped, await validCsr()), 404, "token_not_found");
      const wellFormed = await offline.redeem(generateToken(), await validCsr());
      await expectProblem(wellFormed, 503, "database_unavailable");
    } finally {
      await offline.close();
    }
  });

  test("answers 410 for an expired token", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.sql`
      update federation_enrollment_tokens set expires_at = now() - interval '1 second'
      where id = ${enrollment.tokenId}
    `;
    await expectProblem(await ctx.redeem(enrollment.token, await validCsr()), 410, "token_gone");
  });

  test("answers 410 for a revoked token", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.send("DELETE", `/api/federation/enrollment/tokens/${enrollment.tokenId}`);
    await expectProblem(await ctx.redeem(enrollment.token, await validCsr()), 410, "token_gone");
  });

  test("answers 400 for an invalid CSR", async () => {
    const enrollment = await ctx.enrollment();
    const problem = await expectProblem(
      await ctx.redeem(
        enrollment.token,
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
      ),
      400,
      "invalid_csr",
    );
    expect(problem.detail).toContain("PKCS#10");
  });

  test("answers 400 for a missing csr field", async () => {
    const enrollment = await ctx.enrollment();
    const response = await ctx.send(
      "POST",
      `/api/federation/enrollment/${enrollment.token}`,
      { certificate: "x" },
      { auth: false },
    );
    const problem = await expectProblem(response, 400, "validation_failed");
    expect(problem.errors[0].path).toBe("csr");
  });

  test("answers 400 for malformed JSON", async () => {
    const response = await ctx.send(
      "POST",
      `/api/federation/enrollment/${generateToken()}`,
      '{"csr": ',
      { auth: false },
    );
    await expectProblem(response, 400, "validation_failed");
  });

  test("answers 413 for a large body", async () => {
    const response = await ctx.send(
      "POST",
      `/api/federation/enrollment/${generateToken()}`,
      { csr: "A".repeat(70 * 1024) },
      { auth: false },
    );
    await expectProblem(response, 413, "payload_too_large");
  });

  test("answers 415 for a body that is not JSON", async () => {
    const response = await ctx.send(
      "POST",
      `/api/federation/enrollment/${generateToken()}`,
      "csr=abc",
      { auth: false, headers: { "content-type": "application/x-www-form-urlencoded" } },
    );
    await expectProblem(response, 415, "unsupported_media_type");
  });
});

test("answers 415 for a compressed body", async () => {
  const response = await ctx.send(
    "POST",
    `/api/federation/enrollment/${generateToken()}`,
    { csr: await validCsr() },
    { auth: false, headers: { "content-encoding": "gzip" } },
  );
  await expectProblem(response, 415, "unsupported_media_type");
});

describe("redeem rate limit", () => {
  test("answers 429 with Retry-After and RateLimit headers", async () => {
    const csr = await validCsr();
    const ip = "192.0.2.10";
    for (let i = 0; i < 3; i++) {
      const allowed = await limited.redeem(generateToken(), csr, ip);
      expect(allowed.status).toBe(404);
      expect(allowed.headers.get("ratelimit-remaining")).toBe(String(2 - i));
    }
    const response = await limited.redeem(generateToken(), csr, ip);
    await expectProblem(response, 429, "rate_limited");
    const retryAfter = Number(response.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(response.headers.get("ratelimit-limit")).toBe("3");
    expect(response.headers.get("ratelimit-remaining")).toBe("0");
    expect(response.headers.get("ratelimit-reset")).toBe(String(retryAfter));
  });

  test("counts each client address separately", async () => {
    const csr = await validCsr();
    for (let i = 0; i < 4; i++) await limited.redeem(generateToken(), csr, "192.0.2.20");
    const other = await limited.redeem(generateToken(), csr, "192.0.2.21");
    expect(other.status).toBe(404);
  });

  test("does not count admin requests", async () => {
    const headers = { [CLIENT_IP_HEADER]: "192.0.2.30" };
    for (let i = 0; i < 5; i++) {
      const response = await limited.send("GET", "/api/federation/audit?limit=1", undefined, {
        headers,
      });
      expect(response.status).toBe(200);
    }
    const redeem = await limited.redeem(generateToken(), await validCsr(), "192.0.2.30");
    expect(redeem.status).toBe(404);
  });
});
