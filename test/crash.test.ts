// Kills the service with SIGKILL while redeems wait on a slow step-ca, restarts it on the same
// database and checks what the dead process left behind. Runs against PostgreSQL when
// DATABASE_URL is set and against the service's own PGlite data directory otherwise. In PGlite
// mode the test opens that database itself only while no service process has it open.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectDatabase, type Database } from "../src/db/connect.ts";
import { runMigrations } from "../src/db/migrate.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { createTestDatabase, usingPostgres } from "./support/database.ts";
import {
  invariantViolations,
  type SeededEnrollment,
  seedEnrollment,
  tokenRecords,
} from "./support/enrollment-state.ts";
import { type FakeStepCa, startFakeStepCa } from "./support/fake-step-ca.ts";
import { type ServiceProcess, startService } from "./support/service-process.ts";
import { type StepCaServiceSetup, stepCaServiceSetup } from "./support/step-ca-service.ts";

const OID_ARC = "1.3.6.1.4.1.55555.1";
/** The claim lease is three times this, so claims of the killed process expire in 12 s. */
const CA_TIMEOUT_SECONDS = 4;
/**
 * Well under the CA timeout, so that redeems before the kill complete. Under PGlite the database
 * runs on the service's event loop, and its queries for concurrent redeems eat into the timeout.
 */
const CA_DELAY_MS = 2500;
const DELIVERED_BEFORE_KILL = 10;
const IN_FLIGHT_AT_KILL = 20;
const ENROLLMENTS = 40;
/** Two service starts, the 12 s lease and, under PGlite, three openings of its data directory. */
const CRASH_TEST_TIMEOUT_MS = 120_000;

let dataDir: string;
let fake: FakeStepCa;
let setup: StepCaServiceSetup;
let postgresDatabase: Database | undefined;
let service: ServiceProcess | undefined;
let env: Record<string, string>;

/**
 * Runs `work` on the service's database. PGlite allows one process at a time, so in that mode
 * the data directory is opened here and closed again before the service starts.
 */
async function withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T> {
  if (postgresDatabase) return work(postgresDatabase);
  const database = await connectDatabase({ dataDir });
  try {
    return await work(database);
  } finally {
    await database.close();
  }
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "fe-crash-"));
  fake = await startFakeStepCa({ oidArc: OID_ARC });
  setup = await stepCaServiceSetup(fake, OID_ARC);
  env = {
    ...setup.env,
    CA_TIMEOUT_SECONDS: String(CA_TIMEOUT_SECONDS),
    REDEEM_RATE_LIMIT: "100000",
  };
  if (usingPostgres) {
    postgresDatabase = await createTestDatabase({ poolMax: 4 });
    env.DATABASE_URL = postgresDatabase.url;
  } else {
    await withDatabase((database) => runMigrations(database.url));
  }
});

afterAll(async () => {
  await service?.cleanup();
  await fake?.stop();
  await setup?.cleanup();
  await postgresDatabase?.close();
  await rm(dataDir, { recursive: true, force: true });
});

interface Sent {
  enrollment: SeededEnrollment;
  /** The response, or undefined when the connection died with the process. */
  response: Promise<{ status: number; serialNumber?: string } | undefined>;
}

function send(target: ServiceProcess, enrollment: SeededEnrollment): Sent {
  const response = (async () => {
    const csr = await makeCsr(await generateKey(), { commonName: enrollment.peerName });
    try {
      const answer = await setup.redeem(target, enrollment.token, csr);
      const body = (await answer.json()) as { serialNumber?: string };
      return { status: answer.status, serialNumber: body.serialNumber };
    } catch {
      return undefined;
    }
  })();
  return { enrollment, response };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe("redeem across a crash", () => {
  test(
    "leaves no half-done enrollment",
    async () => {
      const enrollments = await withDatabase(async (database) => {
        const seeded: SeededEnrollment[] = [];
        for (let i = 0; i < ENROLLMENTS; i++) seeded.push(await seedEnrollment(database.sql));
        return seeded;
      });
      fake.mode = { kind: "slow", delayMs: CA_DELAY_MS };
      service = await startService({ runtime: "bun", env, dataDir });

      // Some redeems finish before the kill, so their certificates were delivered.
      const first = enrollments
        .slice(0, DELIVERED_BEFORE_KILL)
        .map((each) => send(service as ServiceProcess, each));
      const beforeKill = await Promise.all(first.map((sent) => sent.response));
      expect(beforeKill.map((answer) => answer?.status)).toEqual(first.map(() => 201));

      // The rest are claimed and wait on the CA when the process dies.
      const callsBefore = fake.signCalls;
      const second = enrollments
        .slice(DELIVERED_BEFORE_KILL)
        .map((each) => send(service as ServiceProcess, each));
      await waitFor(
        () => fake.signCalls - callsBefore >= IN_FLIGHT_AT_KILL,
        "redeems to reach the CA",
      );
      expect(await service.stop("SIGKILL")).toBe("SIGKILL");
      const afterKill = await Promise.all(second.map((sent) => sent.response));
      const deliveredAtKill = second.filter((_, index) => afterKill[index]?.status === 201);
      const inFlight = second.filter((_, index) => afterKill[index]?.status !== 201);
      expect(inFlight.length).toBeGreaterThanOrEqual(IN_FLIGHT_AT_KILL);

      // Every certificate a client received is recorded on its token and its peer.
      const delivered = [
        ...first.map((sent, index) => ({ sent, serial: beforeKill[index]?.serialNumber })),
        ...deliveredAtKill.map((sent) => ({
          sent,
          serial: afterKill[second.indexOf(sent)]?.serialNumber,
        })),
      ];
      const stranded = await withDatabase(async (database) => {
        const records = await tokenRecords(database.sql);
        const unrecorded = delivered.filter(({ sent, serial }) => {
          const record = records.find((each) => each.tokenId === sent.enrollment.tokenId);
          return !serial || record?.certSerial !== serial || record?.peerSerial !== serial;
        });
        return { unrecorded, violations: await invariantViolations(database.sql) };
      });
      expect(stranded.unrecorded.map(({ sent }) => sent.enrollment.tokenId)).toEqual([]);
      expect(stranded.violations).toEqual([]);

      fake.mode = { kind: "ok" };
      service = await startService({ runtime: "bun", env, dataDir });
      const restarted = service;

      // A used token stays used for any other key.
      const used = await send(restarted, (first[0] as Sent).enrollment).response;
      expect(used?.status).toBe(410);

      // Claims of the dead process stay in force until their lease runs out, then are taken over.
      const claimed = inFlight[0] as Sent;
      expect((await send(restarted, claimed.enrollment).response)?.status).toBe(410);
      await Bun.sleep(CA_TIMEOUT_SECONDS * 3 * 1000);
      const retried = await Promise.all(
        inFlight.map((sent) => send(restarted, sent.enrollment).response),
      );
      expect(retried.filter((answer) => answer?.status !== 201)).toEqual([]);

      await restarted.stop("SIGTERM");
      service = undefined;
      expect(await withDatabase((database) => invariantViolations(database.sql))).toEqual([]);
    },
    CRASH_TEST_TIMEOUT_MS,
  );
});
