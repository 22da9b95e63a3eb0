// The revocation retrier as the service runs it: started by startService, retrying a CA
// revocation that failed when its grant was revoked until it succeeds, and stopped with the service.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { CaError, type RevocationReason } from "../src/ca/authority.ts";
import { loadConfig } from "../src/config.ts";
import type { Database } from "../src/db/connect.ts";
import { signAdminToken } from "../src/server/admin-secret.ts";
import { type Service, startService } from "../src/service.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { createTestDatabase, usingPostgres } from "./support/database.ts";
import { TEST_ADMIN_SECRET, uniquePeerName } from "./support/harness.ts";

let dataDir: string;
let database: Database | undefined;
let service: Service;
const logLines: string[] = [];
const revokeCalls: string[] = [];
/** Serials the CA fails to revoke. */
const failing = new Set<string>();

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "fe-retrier-"));
  // PostgreSQL: a database of this suite's own; otherwise the service's embedded PGlite.
  database = usingPostgres ? await createTestDatabase() : undefined;
  const config = loadConfig({
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    TLS: "off",
    ADMIN_JWT_SECRET: TEST_ADMIN_SECRET,
    REVOCATION_RETRY_INTERVAL_SECONDS: "0.1",
    REVOCATION_RETRY_MAX_BACKOFF_SECONDS: "0.2",
    ...(database ? { DATABASE_URL: database.url } : {}),
  });
  const logger = pino(
    { level: "debug" },
    new Writable({
      write(chunk, _encoding, callback) {
        logLines.push(chunk.toString());
        callback();
      },
    }),
  );
  service = await startService(config, logger);
  const revoke = service.ca.revoke.bind(service.ca);
  service.ca.revoke = async (serial: string, reason: RevocationReason) => {
    revokeCalls.push(serial);
    if (failing.has(serial)) throw new CaError("unavailable", "the CA is away");
    return revoke(serial, reason);
  };
});

afterAll(async () => {
  await service?.stop().catch(() => {});
  await database?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function call(method: string, url: string, body?: unknown) {
  const token = await signAdminToken({
    secret: TEST_ADMIN_SECRET,
    subject: "retrier-test",
    scope: "federation:admin",
    ttlSeconds: 600,
  });
  const response = await fetch(`${service.url}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}

/** Enrolls a peer through the running service; returns its grant and certificate serial. */
async function enrolled() {
  const peer = (await call("POST", "/api/federation/peers", { name: uniquePeerName("retry") }))
    .body;
  const grant = (await call("POST", "/api/federation/grants", { peerId: peer.id, scopes: [] }))
    .body;
  const token = (await call("POST", "/api/federation/enrollment/tokens", { grantId: grant.id }))
    .body;
  const csr = await makeCsr(await generateKey(), { commonName: peer.name });
  const redeemed = await fetch(`${service.url}/api/federation/enrollment/${token.token}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ csr }),
  });
  expect(redeemed.status).toBe(201);
  return { grant, serial: (await redeemed.json()).serialNumber as string };
}

describe("the revocation retrier in the service", () => {
  test("retries a failed CA revocation in the background until it succeeds, and stops with the service", async () => {
    const { grant, serial } = await enrolled();
    failing.add(serial);
    const revoked = await call("POST", `/api/federation/grants/${grant.id}/revoke`, {
      reason: "keyCompromise",
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({
      status: "revoked",
      certRevocation: "pending",
      certRevocationError: "ca_unavailable",
    });

    // The retrier keeps trying while the CA fails, with backoff capped at 0.2 s here.
    const retried = await waitFor(
      () => call("GET", `/api/federation/grants/${grant.id}`),
      (read) => read.body.certRevocationAttempts >= 4,
    );
    expect(retried.body.certRevocation).toBe("pending");
    expect(revokeCalls.filter((call) => call === serial).length).toBeGreaterThanOrEqual(4);

    failing.delete(serial);
    const done = await waitFor(
      () => call("GET", `/api/federation/grants/${grant.id}`),
      (read) => read.body.certRevocation === "done",
    );
    expect(done.body.certRevocation).toBe("done");
    expect(done.body.certRevocationError).toBeNull();
    const crl = await fetch(`${service.url}/api/federation/crl?format=pem`);
    expect(crl.status).toBe(200);

    const audit = await call("GET", `/api/federation/audit?resourceId=${grant.id}&limit=200`);
    const attempts = audit.body.items.filter(
      (row: { verb: string }) => row.verb === "certificate.revoke",
    );
    expect(attempts[0]).toMatchObject({ outcome: "success", actor: "system:revocation-retrier" });
    expect(attempts.length).toBe(done.body.certRevocationAttempts);
    expect(logLines.join("")).toContain("revocation retrier round");

    // Once stopped, the retrier makes no more attempts, although a revocation is still pending.
    const stuck = await enrolled();
    failing.add(stuck.serial);
    await call("POST", `/api/federation/grants/${stuck.grant.id}/revoke`);
    await waitFor(
      async () => revokeCalls.filter((call) => call === stuck.serial).length,
      (count) => count >= 2,
    );
    await service.stop();
    const callsAtStop = revokeCalls.length;
    const linesAtStop = logLines.length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(revokeCalls.length).toBe(callsAtStop);
    // Not even a round that fails on the closed database.
    expect(logLines.slice(linesAtStop).join("")).not.toContain("revocation retrier");
  });
});
