import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import type { Db } from "./connect.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../drizzle", import.meta.url));

const LOCK_KEY = "federation_enrollment_migrations";

/**
 * Applies the migrations in drizzle/ on a dedicated connection, so that a long migration never
 * holds a connection of the request pool. A session advisory lock serializes instances that start
 * at the same time; the pool has one connection, so the lock and the migration share it.
 */
export async function runMigrations(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(hashtext(${LOCK_KEY}))`;
    await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_DIR });
    await sql`select pg_advisory_unlock(hashtext(${LOCK_KEY}))`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Number of migrations shipped in drizzle/, from drizzle-kit's journal. */
export function expectedMigrationCount(): number {
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, "meta/_journal.json"), "utf8"));
  return (journal.entries as unknown[]).length;
}

/** Counts the migrations recorded as applied; 0 when none ever ran. */
export async function appliedMigrationCount(db: Db): Promise<number> {
  const [exists] = await db`select to_regclass('drizzle.__drizzle_migrations') is not null as ok`;
  if (!exists?.ok) return 0;
  const [row] = await db`select count(*)::int as applied from drizzle.__drizzle_migrations`;
  return row?.applied ?? 0;
}
