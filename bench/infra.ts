// Infrastructure around the service: a running PostgreSQL, throwaway databases, a TLS server
// certificate for 127.0.0.1 and free loopback ports.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";

const execFileAsync = promisify(execFile);

/** Server of the benchmark databases; BENCH_DATABASE_URL overrides the local default. */
export const SERVER_URL =
  process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function postgresReady(): Promise<boolean> {
  const url = new URL(SERVER_URL);
  try {
    await execFileAsync("pg_isready", ["-q", "-h", url.hostname, "-p", url.port || "5432"]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the local Debian PostgreSQL cluster when nothing listens on the configured server, the
 * same way .ci/run does, and waits up to 30 s for it.
 */
export async function ensurePostgres(): Promise<void> {
  if (await postgresReady()) return;
  const versions = await readdir("/etc/postgresql").catch(() => []);
  const version = versions[0];
  if (!version) {
    throw new Error(`PostgreSQL at ${SERVER_URL} is down and /etc/postgresql has no cluster`);
  }
  await execFileAsync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "start"]);
  for (let attempt = 0; attempt < 30; attempt++) {
    if (await postgresReady()) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`PostgreSQL at ${SERVER_URL} did not become ready within 30 s`);
}

/** Creates an empty database with a random name and returns its URL and a drop function. */
export async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `fe_bench_${randomBytes(6).toString("hex")}`;
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const dropper = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
      try {
        await dropper.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

export interface ServerCertificate {
  certPath: string;
  keyPath: string;
  certPem: string;
}

/**
 * Writes a self-signed ECDSA P-256 certificate for 127.0.0.1 into `dir`: the same key type the
 * built-in CA gives the service, shared by the service and the bare Hono app.
 */
export async function createServerCertificate(dir: string): Promise<ServerCertificate> {
  const certPath = path.join(dir, "server.crt");
  const keyPath = path.join(dir, "server.key");
  await execFileAsync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-noenc",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    keyPath,
    "-out",
    certPath,
  ]);
  return { certPath, keyPath, certPem: await readFile(certPath, "utf8") };
}

/** Asks the OS for a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no TCP port assigned");
  return address.port;
}
