import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CaError } from "../src/ca/authority.ts";
import { registerPoolMetrics } from "../src/metrics/database-pool.ts";
import { REDEEM_OUTCOMES, ServiceMetrics } from "../src/metrics/metrics.ts";
import { CountingCa } from "./support/counting-ca.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

const METRICS_TOKEN = "metrics-token-0123456789abcdef";
const REDEEM_LIMIT = 2;

let ctx: TestContext;
let ca: CountingCa;
let clientCounter = 0;

/** Returns a fresh client address, so that only the rate limit test reaches the redeem limit. */
function nextClientIp(): string {
  clientCounter += 1;
  return `192.0.2.${clientCounter}`;
}

beforeAll(async () => {
  const metrics = new ServiceMetrics();
  ctx = await createTestContext({
    env: { REDEEM_RATE_LIMIT: String(REDEEM_LIMIT) },
    metrics,
    ca: (builtin) => {
      ca = new CountingCa(builtin);
      return ca;
    },
  });
  registerPoolMetrics(metrics.registry, ctx.sql);
});

afterAll(async () => {
  await ctx.close();
});

async function scrape(context: TestContext = ctx): Promise<string> {
  const response = await context.send("GET", "/metrics", undefined, { auth: false });
  expect(response.status).toBe(200);
  return response.text();
}

/** Value of one sample, found by its exact name and label set; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function outcome(text: string, name: string): number | undefined {
  return sample(text, `federation_redeem_outcomes_total{outcome="${name}"}`);
}

async function redeemOnce(token: string, peerName: string, clientIp = nextClientIp()) {
  const csr = await makeCsr(await generateKey(), { commonName: peerName });
  return ctx.redeem(token, csr, clientIp);
}

describe("metrics", () => {
  test("serves the Prometheus text format", async () => {
    const response = await ctx.send("GET", "/metrics", undefined, { auth: false });
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await response.text();
    const samples = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
    for (const line of samples) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (-?[0-9.e+-]+|\+Inf)$/);
    }
    expect(sample(text, "process_cpu_seconds_total")).toBeGreaterThanOrEqual(0);
  });

  test("starts every redeem outcome at zero", async () => {
    const fresh = new ServiceMetrics({ processMetrics: false });
    const text = await fresh.render();
    for (const name of REDEEM_OUTCOMES)
      expect({ name, value: outcome(text, name) }).toEqual({ name, value: 0 });
  });

  test("counts requests by route pattern", async () => {
    const id = "00000000-0000-4000-8000-000000000000";
    expect((await ctx.send("GET", `/api/federation/peers/${id}`)).status).toBe(404);
    const text = await scrape();
    const series =
      'federation_http_requests_total{method="GET",route="/api/federation/peers/:id",status="404"}';
    expect(sample(text, series)).toBe(1);
    const histogram =
      'federation_http_request_duration_seconds_count{method="GET",route="/api/federation/peers/:id"}';
    expect(sample(text, histogram)).toBe(1);
  });

  test("groups unknown methods as other", async () => {
    await ctx.send("PROPFIND", "/healthz", undefined, { auth: false });
    const text = await scrape();
    expect(text).not.toContain("PROPFIND");
    expect(
      sample(text, 'federation_http_requests_total{method="other",route="unmatched",status="404"}'),
    ).toBe(1);
  });

  test("counts issued, replayed and gone", async () => {
    const before = await scrape();
    const enrollment = await ctx.enrollment();
    const key = await generateKey();
    const csr = await makeCsr(key, { commonName: enrollment.peer.name });
    const clientIp = nextClientIp();
    expect((await ctx.redeem(enrollment.token, csr, clientIp)).status).toBe(201);
    expect((await ctx.redeem(enrollment.token, await makeCsr(key), nextClientIp())).status).toBe(
      200,
    );
    expect((await redeemOnce(enrollment.token, enrollment.peer.name)).status).toBe(410);

    const after = await scrape();
    for (const name of ["issued", "replayed", "gone"]) {
      const delta = (outcome(after, name) ?? 0) - (outcome(before, name) ?? 0);
      expect({ name, delta }).toEqual({ name, delta: 1 });
    }
  });

  test("counts not_found and invalid_csr", async () => {
    const before = await scrape();
    const enrollment = await ctx.enrollment();
    const unknown = await redeemOnce(`${enrollment.token.slice(0, -8)}AAAAAAAA`, "x");
    expect(unknown.status).toBe(404);
    const invalid = await ctx.redeem(enrollment.token, "not a csr", nextClientIp());
    expect(invalid.status).toBe(400);

    const after = await scrape();
    expect((outcome(after, "not_found") ?? 0) - (outcome(before, "not_found") ?? 0)).toBe(1);
    expect((outcome(after, "invalid_csr") ?? 0) - (outcome(before, "invalid_csr") ?? 0)).toBe(1);
  });

  test("counts CA errors and times them", async () => {
    const before = await scrape();
    const enrollment = await ctx.enrollment();
    ca.beforeSign = () => {
      throw new CaError("unavailable", "the test CA is down");
    };
    try {
      expect((await redeemOnce(enrollment.token, enrollment.peer.name)).status).toBe(503);
    } finally {
      ca.beforeSign = undefined;
    }
    expect((await redeemOnce(enrollment.token, enrollment.peer.name)).status).toBe(201);

    const after = await scrape();
    expect((outcome(after, "ca_error") ?? 0) - (outcome(before, "ca_error") ?? 0)).toBe(1);
    const failed = 'federation_ca_sign_duration_seconds_count{ca="builtin",result="unavailable"}';
    expect((sample(after, failed) ?? 0) - (sample(before, failed) ?? 0)).toBe(1);
    const succeeded = 'federation_ca_sign_duration_seconds_count{ca="builtin",result="success"}';
    expect((sample(after, succeeded) ?? 0) - (sample(before, succeeded) ?? 0)).toBe(1);
  });

  test("counts a lost claim", async () => {
    const before = await scrape();
    const enrollment = await ctx.enrollment();
    // Revoked while the CA signs, so the final transaction no longer owns the claim.
    ca.beforeSign = async () => {
      await ctx.sql`
        update federation_enrollment_tokens set revoked_at = now() where id = ${enrollment.tokenId}
      `;
    };
    try {
      expect((await redeemOnce(enrollment.token, enrollment.peer.name)).status).toBe(410);
    } finally {
      ca.beforeSign = undefined;
    }
    const after = await scrape();
    expect((outcome(after, "lost_claim") ?? 0) - (outcome(before, "lost_claim") ?? 0)).toBe(1);
  });

  test("counts rate-limited redeems", async () => {
    const before = await scrape();
    const clientIp = nextClientIp();
    const enrollment = await ctx.enrollment();
    const statuses: number[] = [];
    for (let attempt = 0; attempt <= REDEEM_LIMIT; attempt++) {
      statuses.push((await ctx.redeem(enrollment.token, "not a csr", clientIp)).status);
    }
    expect(statuses.at(-1)).toBe(429);
    const after = await scrape();
    expect((outcome(after, "rate_limited") ?? 0) - (outcome(before, "rate_limited") ?? 0)).toBe(1);
  });

  test("stays outside the redeem rate limit", async () => {
    const clientIp = nextClientIp();
    for (let attempt = 0; attempt <= REDEEM_LIMIT; attempt++) {
      await ctx.redeem("fedtok_unknown", "not a csr", clientIp);
    }
    for (let scrapeCount = 0; scrapeCount <= REDEEM_LIMIT * 2; scrapeCount++) {
      const response = await ctx.send("GET", "/metrics", undefined, {
        auth: false,
        headers: { "x-test-client-ip": clientIp },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("ratelimit-remaining")).toBeNull();
    }
  });

  test("counts tokens created and revoked", async () => {
    const before = await scrape();
    const enrollment = await ctx.enrollment();
    expect(
      (await ctx.send("DELETE", `/api/federation/enrollment/tokens/${enrollment.tokenId}`)).status,
    ).toBe(204);
    const after = await scrape();
    const created = "federation_enrollment_tokens_created_total";
    const revoked = "federation_enrollment_tokens_revoked_total";
    expect((sample(after, created) ?? 0) - (sample(before, created) ?? 0)).toBe(1);
    expect((sample(after, revoked) ?? 0) - (sample(before, revoked) ?? 0)).toBe(1);
  });

  test("never labels a token or peer", async () => {
    const enrollment = await ctx.enrollment();
    await redeemOnce(enrollment.token, enrollment.peer.name);
    const text = await scrape();
    for (const secretOrId of [
      enrollment.token,
      enrollment.tokenId,
      enrollment.peer.id,
      enrollment.peer.name,
      enrollment.grant.id,
    ]) {
      expect(text).not.toContain(secretOrId);
    }
  });

  test("reports the database pool", async () => {
    const text = await scrape();
    expect(sample(text, "federation_db_pool_max_connections")).toBe(ctx.sql.options.max);
    const inUse = sample(text, 'federation_db_pool_connections{state="in_use"}');
    const idle = sample(text, 'federation_db_pool_connections{state="idle"}');
    expect(inUse).toBeGreaterThanOrEqual(0);
    expect(idle).toBeGreaterThanOrEqual(0);
    expect((inUse ?? 0) + (idle ?? 0)).toBeLessThanOrEqual(ctx.sql.options.max);
    expect(sample(text, "federation_db_pool_waiting_queries")).toBe(0);
  });
});

describe("metrics with METRICS_TOKEN", () => {
  let guarded: TestContext;

  beforeAll(async () => {
    guarded = await createTestContext({
      env: { METRICS_TOKEN },
      metrics: new ServiceMetrics({ processMetrics: false }),
    });
  });

  afterAll(async () => {
    await guarded.close();
  });

  test("rejects a scrape without the token", async () => {
    const response = await guarded.send("GET", "/metrics", undefined, { auth: false });
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="federation-metrics"');
  });

  test("rejects a wrong token", async () => {
    const response = await guarded.send("GET", "/metrics", undefined, {
      auth: false,
      headers: { authorization: `Bearer ${METRICS_TOKEN}x` },
    });
    expect(response.status).toBe(401);
  });

  test("rejects an admin JWT", async () => {
    const response = await guarded.send("GET", "/metrics");
    expect(response.status).toBe(401);
  });

  test("serves a scrape with the token", async () => {
    const response = await guarded.send("GET", "/metrics", undefined, {
      auth: false,
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("federation_redeem_outcomes_total");
  });
});
