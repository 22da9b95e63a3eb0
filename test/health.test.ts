import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectedMigrationCount } from "../src/db/migrate.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
});

afterAll(async () => {
  await ctx.close();
});

describe("health", () => {
  test("healthz reports the process up", async () => {
    const response = await ctx.send("GET", "/healthz", undefined, { auth: false });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  test("healthz needs no database", async () => {
    const spare = await createTestContext();
    await spare.sql.end();
    try {
      const response = await spare.send("GET", "/healthz", undefined, { auth: false });
      expect(response.status).toBe(200);
    } finally {
      await spare.close();
    }
  });

  test("readyz reports every check ready", async () => {
    const response = await ctx.send("GET", "/readyz", undefined, { auth: false });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: "ready",
      failing: [],
      checks: {
        database: { ok: true },
        migrations: { ok: true },
        certificateAuthority: { ok: true },
      },
    });
  });

  test("readyz counts every shipped migration", async () => {
    const [row] = await ctx.sql<{ applied: number }[]>`
      select count(*)::int as applied from drizzle.__drizzle_migrations
    `;
    expect(row?.applied).toBe(expectedMigrationCount());
  });
});
