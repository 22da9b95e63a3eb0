// `npm run db:migrate`, the one-off migration for deployments, against a fresh PostgreSQL
// database. Needs DATABASE_URL; without it only the missing-URL case runs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import path from "node:path";
import postgres from "postgres";
import { appliedMigrationCount, expectedMigrationCount } from "../src/db/migrate.ts";
import { usingPostgres } from "./support/database.ts";
import { runCommand } from "./support/run-command.ts";

const repoRoot = path.resolve(import.meta.dirname, "..");

function dbMigrate(env: Record<string, string>) {
  return runCommand("npm", ["run", "--silent", "db:migrate"], { cwd: repoRoot, env });
}

test("db:migrate needs DATABASE_URL", async () => {
  const result = await dbMigrate({});
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("db:migrate: set DATABASE_URL");
});

test("db:migrate rejects invalid configuration", async () => {
  const result = await dbMigrate({ DATABASE_URL: "postgres://127.0.0.1/x", LOG_LEVEL: "loud" });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("LOG_LEVEL");
});

describe.skipIf(!usingPostgres)("db:migrate on PostgreSQL", () => {
  const serverUrl = process.env.DATABASE_URL as string;
  const name = `fe_migrate_${randomBytes(6).toString("hex")}`;
  let databaseUrl: string;
  let sql: postgres.Sql;

  beforeAll(async () => {
    const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    await admin.end();
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  });

  afterAll(async () => {
    await sql?.end();
    const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  test("migrates a fresh database", async () => {
    expect(await appliedMigrationCount(sql)).toBe(0);
    const result = await dbMigrate({ DATABASE_URL: databaseUrl });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const expected = expectedMigrationCount();
    expect(result.stdout.trim()).toEndWith(`/${name} has ${expected} of ${expected} migrations`);
    expect(await appliedMigrationCount(sql)).toBe(expected);
    const tables = await sql<{ name: string }[]>`
      select table_name as name from information_schema.tables
      where table_schema = 'public' and table_name like 'federation_%'
      order by table_name
    `;
    expect(tables.map((table) => table.name)).toContain("federation_enrollment_tokens");
    expect(tables.map((table) => table.name)).toContain("federation_audit_log");
  });

  test("runs again without changes", async () => {
    const result = await dbMigrate({ DATABASE_URL: databaseUrl });
    expect(result.code).toBe(0);
    expect(await appliedMigrationCount(sql)).toBe(expectedMigrationCount());
  });

  test("reports an unreachable database", async () => {
    const result = await dbMigrate({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("db:migrate: migrating 127.0.0.1:1/none failed");
    expect(result.stderr).toContain("ECONNREFUSED");
  });
});
