import { Hono } from "hono";
import type { CertificateAuthority } from "../../ca/authority.ts";
import type { Sql } from "../../db/connect.ts";
import { appliedMigrationCount, expectedMigrationCount } from "../../db/migrate.ts";
import type { Logger } from "../../log.ts";
import type { AppEnv } from "../context.ts";

type Check = { ok: true } | { ok: false; error: string };

async function check(run: () => Promise<void>): Promise<Check> {
  try {
    await run();
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Liveness and readiness. Readiness names each part that is not ready, and logs when it changes
 * between ready and not ready rather than on every poll.
 */
export function healthRoutes(sql: Sql, ca: CertificateAuthority, logger: Logger) {
  const expectedMigrations = expectedMigrationCount();
  let wasReady = true;
  return new Hono<AppEnv>()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const database = await check(async () => {
        await sql`select 1`;
      });
      const migrations = database.ok
        ? await check(async () => {
            const applied = await appliedMigrationCount(sql);
            if (applied < expectedMigrations) {
              throw new Error(`${applied} of ${expectedMigrations} migrations applied`);
            }
          })
        : ({ ok: false, error: "database unavailable" } as const);
      const certificateAuthority = await check(() => ca.checkReady());
      const checks = { database, migrations, certificateAuthority };
      const failing = Object.entries(checks)
        .filter(([, result]) => !result.ok)
        .map(([name]) => name);
      const body = { status: failing.length === 0 ? "ready" : "not_ready", failing, checks };
      if (wasReady !== (failing.length === 0)) {
        wasReady = failing.length === 0;
        if (wasReady) logger.info("ready again");
        else logger.warn({ requestId: c.get("requestId"), checks }, "not ready");
      }
      return c.json(body, failing.length === 0 ? 200 : 503);
    });
}
