import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import postgres from "postgres";

export type Sql = postgres.Sql;
/** A pool or a transaction: repository functions accept either. */
export type Db = postgres.Sql | postgres.TransactionSql;

export interface Database {
  sql: Sql;
  /** Connection string of the server in use, for a dedicated migration connection. */
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** PostgreSQL connection string; when absent, an embedded PGlite in `dataDir` is used. */
  databaseUrl?: string;
  /** PGlite data directory; "memory://" keeps it in memory. */
  dataDir: string;
  poolMax?: number;
}

/** Options shared by every pool: camelCase columns in results, no notices on stdout. */
export function createPool(url: string, max: number): Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
    transform: { column: { from: postgres.toCamel } },
    connect_timeout: 5,
    // Bounded so that an unreachable database answers 503 instead of holding requests.
    idle_timeout: 30,
  });
}

/**
 * Opens the database. PGlite is served to postgres.js over a loopback socket so that the service
 * has one driver. PGlite is single-session, so that pool holds one connection, which also keeps
 * each transaction whole.
 */
export async function connectDatabase(options: ConnectOptions): Promise<Database> {
  if (options.databaseUrl) {
    const sql = createPool(options.databaseUrl, options.poolMax ?? 10);
    return { sql, url: options.databaseUrl, embedded: false, close: () => sql.end({ timeout: 5 }) };
  }

  let dataDir = options.dataDir;
  if (!dataDir.startsWith("memory://")) {
    dataDir = path.resolve(dataDir, "pglite");
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  }
  const pglite = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({
    db: pglite,
    host: "127.0.0.1",
    port: 0,
    maxConnections: 1,
  });
  await server.start();
  const url = `postgres://postgres@${server.getServerConn()}/postgres`;
  const sql = createPool(url, 1);
  return {
    sql,
    url,
    embedded: true,
    async close() {
      await sql.end({ timeout: 5 });
      await server.stop();
      await pglite.close();
    },
  };
}
