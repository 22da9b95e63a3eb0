// Graceful shutdown of the real service: a redeem that is waiting on a slow step-ca when SIGTERM
// arrives still gets its certificate, the listener refuses new connections, and the process
// exits with 0.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Database } from "../src/db/connect.ts";
import { signAdminToken } from "../src/server/admin-secret.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { createTestDatabase, usingPostgres } from "./support/database.ts";
import { type FakeStepCa, startFakeStepCa } from "./support/fake-step-ca.ts";
import { type Runtime, type ServiceProcess, startService } from "./support/service-process.ts";

const ADMIN_SECRET = "shutdown-test-admin-secret-0123456789abcdef";
// Small arcs, because step-ca cannot encode the default 2.25 UUID arc.
const OID_ARC = "1.3.6.1.4.1.32473.7";
const SIGN_DELAY_MS = 3000;

let fake: FakeStepCa;
let workDir: string;

beforeAll(async () => {
  fake = await startFakeStepCa({ oidArc: OID_ARC });
  workDir = await mkdtemp(path.join(tmpdir(), "fe-shutdown-"));
  await writeFile(path.join(workDir, "root.crt"), fake.rootPem);
  await writeFile(path.join(workDir, "provisioner.json"), JSON.stringify(fake.provisionerKey));
});

afterAll(async () => {
  await fake?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Resolves with the socket error code, or "connected" when the port still accepts. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

async function post(service: ServiceProcess, url: string, body: unknown, jwt?: string) {
  return fetch(`${service.url}${url}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(jwt ? { authorization: `Bearer ${jwt}` } : {}),
    },
    body: JSON.stringify(body),
  });
}

async function enrollment(service: ServiceProcess, peerName: string) {
  const jwt = await signAdminToken({
    secret: ADMIN_SECRET,
    subject: "shutdown-test",
    scope: "federation:admin",
    ttlSeconds: 300,
  });
  const peer = await (await post(service, "/api/federation/peers", { name: peerName }, jwt)).json();
  const grant = await (
    await post(service, "/api/federation/grants", { peerId: peer.id, scopes: ["a"] }, jwt)
  ).json();
  const token = await (
    await post(service, "/api/federation/enrollment/tokens", { grantId: grant.id }, jwt)
  ).json();
  const csr = await makeCsr(await generateKey(), { commonName: peerName });
  return { token: token.token as string, csr };
}

describe.each(["bun", "node"] as Runtime[])("shutdown under %s", (runtime) => {
  let database: Database | undefined;
  let service: ServiceProcess | undefined;

  async function start(graceSeconds: number): Promise<ServiceProcess> {
    database = usingPostgres ? await createTestDatabase({ poolMax: 1 }) : undefined;
    service = await startService({
      runtime,
      env: {
        TLS: "off",
        ADMIN_JWT_SECRET: ADMIN_SECRET,
        CERT_OID_ARC: OID_ARC,
        STEP_CA_URL: fake.url,
        STEP_CA_ROOT: path.join(workDir, "root.crt"),
        STEP_CA_PROVISIONER: fake.provisionerName,
        STEP_CA_PROVISIONER_KEY: path.join(workDir, "provisioner.json"),
        SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
        ...(database ? { DATABASE_URL: database.url } : {}),
      },
    });
    return service;
  }

  /** Starts a redeem against the slow CA and resolves once step-ca has received it. */
  async function redeemInFlight(running: ServiceProcess, peerName: string, delayMs: number) {
    const { token, csr } = await enrollment(running, peerName);
    fake.mode = { kind: "slow", delayMs };
    const signCallsBefore = fake.signCalls;
    const state = { settled: false };
    // Settles to the response or the fetch error, so a closed connection is a value to check.
    const result: Promise<Response | Error> = post(running, `/api/federation/enrollment/${token}`, {
      csr,
    }).then(
      (response) => response,
      (error: Error) => error,
    );
    void result.then(() => {
      state.settled = true;
    });
    await waitFor(() => fake.signCalls > signCallsBefore, "the redeem to reach step-ca");
    return { result, state };
  }

  afterEach(async () => {
    fake.mode = { kind: "ok" };
    await service?.cleanup();
    await database?.close();
    service = undefined;
    database = undefined;
  });

  test("finishes an in-flight redeem", async () => {
    const running = await start(15);
    const peerName = `shutdown-${runtime}`;
    const redeem = await redeemInFlight(running, peerName, SIGN_DELAY_MS);

    const exited = running.stop("SIGTERM");
    await waitFor(
      async () => (await tryConnect(running.port)) === "ECONNREFUSED",
      "the listener to refuse connections",
    );
    // Refused while the redeem still waits on the slow CA, not after it finished.
    expect(redeem.state.settled).toBe(false);

    const response = await redeem.result;
    if (response instanceof Error) throw response;
    expect(response.status).toBe(201);
    expect((await response.json()).peer.name).toBe(peerName);
    expect(await exited).toBe(0);
    expect(running.logs().at(-1)?.msg).toBe("stopped");
  });

  test("ends requests after the grace period", async () => {
    const running = await start(1);
    const redeem = await redeemInFlight(running, `grace-${runtime}`, 30_000);

    expect(await running.stop("SIGTERM")).toBe(0);
    const result = await redeem.result;
    expect(result instanceof Error ? "connection closed" : `status ${result.status}`).toBe(
      "connection closed",
    );
    const messages = running.logs().map((line) => line.msg);
    expect(messages).toContain(
      "shutdown grace period ended; closed the connections of unfinished requests",
    );
    expect(messages.at(-1)).toBe("stopped");
  });
});
