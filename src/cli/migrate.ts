/** Applies the migrations in drizzle/ to DATABASE_URL, for deployments that migrate once. */
import { loadConfig } from "../config.ts";
import { runMigrations } from "../db/migrate.ts";

const config = loadConfig();
if (!config.DATABASE_URL) {
  console.error(
    "db:migrate: set DATABASE_URL; the embedded database is migrated when the service starts",
  );
  process.exit(2);
}
await runMigrations(config.DATABASE_URL);
console.log("migrations applied");
