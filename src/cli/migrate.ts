/**
 * Applies the migrations in drizzle/ to DATABASE_URL, for deployments that migrate once before
 * they start the service. Exits with 0 when every migration is applied (also when none was
 * missing), 1 when migrating failed and 2 when the configuration is invalid.
 */
import { ConfigError, loadConfig } from "../config.ts";
import { createPool } from "../db/connect.ts";
import { appliedMigrationCount, expectedMigrationCount, runMigrations } from "../db/migrate.ts";

let databaseUrl: string | undefined;
try {
  databaseUrl = loadConfig().DATABASE_URL;
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
if (!databaseUrl) {
  console.error(
    "db:migrate: set DATABASE_URL; the embedded database is migrated when the service starts",
  );
  process.exit(2);
}

// The URL may hold a password, so only the host and database are printed.
const target = (() => {
  try {
    const url = new URL(databaseUrl);
    return `${url.host}${url.pathname}`;
  } catch {
    return "DATABASE_URL";
  }
})();

try {
  await runMigrations(databaseUrl);
  const sql = createPool(databaseUrl, 1);
  const applied = await appliedMigrationCount(sql).finally(() => sql.end({ timeout: 5 }));
  console.log(`db:migrate: ${target} has ${applied} of ${expectedMigrationCount()} migrations`);
} catch (error) {
  console.error(`db:migrate: migrating ${target} failed:`, error);
  process.exit(1);
}
