// Gives each test suite a database of its own: a fresh PostgreSQL database when DATABASE_URL is
// set, or an in-memory PGlite otherwise.
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { connectDatabase, createPool, type Database } from "../../src/db/connect.ts";
import { runMigrations } from "../../src/db/migrate.ts";

export const usingPostgres = Boolean(process.env.DATABASE_URL);

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Creates and migrates a database for one suite; `close()` drops it again. */
export async function createTestDatabase(options: { poolMax?: number } = {}): Promise<Database> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const database = await connectDatabase({ dataDir: "memory://" });
    await runMigrations(database.url);
    return database;
  }
  const name = `fe_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = withDatabase(serverUrl, name);
  await runMigrations(url);
  const sql = createPool(url, options.poolMax ?? 20);
  return {
    sql,
    url,
    embedded: false,
    async close() {
      await sql.end({ timeout: 5 });
      const dropper = postgres(serverUrl, { max: 1, onnotice: () => {} });
      await dropper.unsafe(`drop database if exists ${name} with (force)`);
      await dropper.end();
    },
  };
}
