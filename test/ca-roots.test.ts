import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { certificateFingerprint } from "../src/ca/fingerprint.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
});

afterAll(async () => {
  await ctx.close();
});

describe("GET /api/federation/ca/roots", () => {
  test("serves the roots as PEM without authentication", async () => {
    const response = await ctx.app.request("/api/federation/ca/roots");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-pem-file");
    expect(response.headers.get("cache-control")).toBe("public, max-age=300");
    expect(await response.text()).toBe(ctx.ca.roots().join(""));
  });

  test("serves the root the token response pins", async () => {
    const roots = await (await ctx.app.request("/api/federation/ca/roots")).text();
    const { grant } = await ctx.enrollment();
    const created = await ctx.send("POST", "/api/federation/enrollment/tokens", {
      grantId: grant.id,
    });
    const body = await created.json();
    expect(body.caFingerprint).toBe(certificateFingerprint(roots));
  });
});
