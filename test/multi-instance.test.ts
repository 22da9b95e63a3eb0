// Runs two service processes, one under Bun and one under Node, on one PostgreSQL database and
// one step-ca, and sends every other request to each. Separate processes share nothing but the
// database, so these races show whether the claim, the final transaction and the rate limit hold
// at the database rather than in process memory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "../src/db/connect.ts";
import { generateToken } from "../src/enrollment/token-format.ts";
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
const RATE_LIMIT = 5;
const RATE_WINDOW_SECONDS = 60;

if (!usingPostgres) {
  console.warn(
    "skipping multi-instance tests: two processes share a database only with DATABASE_URL",
  );
}

interface Cluster {
  database: Database;
  fake: FakeStepCa;
  setup: StepCaServiceSetup;
  instances: ServiceProcess[];
  stop(): Promise<void>;
}

/** Starts a Bun and a Node instance at the same time on a fresh database and step-ca. */
async function startCluster(env: Record<string, string>): Promise<Cluster> {
  const database = await createTestDatabase({ poolMax: 4 });
  const fake = await startFakeStepCa({ oidArc: OID_ARC });
  const setup = await stepCaServiceSetup(fake, OID_ARC);
  const serviceEnv = { ...setup.env, DATABASE_URL: database.url, ...env };
  const started = await Promise.allSettled([
    startService({ runtime: "bun", env: serviceEnv }),
    startService({ runtime: "node", env: serviceEnv }),
  ]);
  const instances = started.flatMap((result) =>
    result.status === "fulfilled" ? [result.value] : [],
  );
  const stop = async () => {
    await Promise.all(instances.map((instance) => instance.cleanup()));
    await fake.stop();
    await setup.cleanup();
    await database.close();
  };
  const failed = started.find((result) => result.status === "rejected");
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { database, fake, setup, instances, stop };
}

interface Outcome {
  token: string;
  status: number;
  serialNumber?: string;
  code?: string;
}

describe.skipIf(!usingPostgres)("redeem across two instances", () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ REDEEM_RATE_LIMIT: "100000" });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  /** Sends all attempts at once, attempt i to instance i mod 2. */
  async function race(attempts: { enrollment: SeededEnrollment; csr: string }[]) {
    return Promise.all(
      attempts.map(async ({ enrollment, csr }, index): Promise<Outcome> => {
        const instance = cluster.instances[index % 2] as ServiceProcess;
        const response = await cluster.setup.redeem(instance, enrollment.token, csr);
        const body = (await response.json()) as Record<string, string>;
        return {
          token: enrollment.token,
          status: response.status,
          serialNumber: body.serialNumber,
          code: body.code,
        };
      }),
    );
  }

  async function attemptsFor(enrollments: SeededEnrollment[], perToken: number) {
    const attempts: { enrollment: SeededEnrollment; csr: string }[] = [];
    for (let round = 0; round < perToken; round++) {
      for (const enrollment of enrollments) {
        const csr = await makeCsr(await generateKey(), { commonName: enrollment.peerName });
        attempts.push({ enrollment, csr });
      }
    }
    return attempts;
  }

  /** Checks that each token delivered one certificate and that the database records it. */
  async function expectOnePerToken(enrollments: SeededEnrollment[], outcomes: Outcome[]) {
    const otherAnswers = outcomes.filter(
      (outcome) => outcome.status !== 201 && outcome.status !== 410,
    );
    expect(otherAnswers).toEqual([]);
    const gone = outcomes.filter((outcome) => outcome.status === 410);
    expect(gone.filter((outcome) => outcome.code !== "token_gone")).toEqual([]);
    const delivered = new Map<string, string[]>();
    for (const outcome of outcomes.filter((each) => each.status === 201)) {
      delivered.set(outcome.token, [
        ...(delivered.get(outcome.token) ?? []),
        outcome.serialNumber ?? "",
      ]);
    }
    const notOnce = enrollments.filter(
      (enrollment) => delivered.get(enrollment.token)?.length !== 1,
    );
    expect(notOnce.map((enrollment) => enrollment.tokenId)).toEqual([]);

    const records = await tokenRecords(
      cluster.database.sql,
      enrollments.map((enrollment) => enrollment.tokenId),
    );
    const unrecorded = records.filter((record) => {
      const enrollment = enrollments.find((each) => each.tokenId === record.tokenId);
      const serial = delivered.get(enrollment?.token ?? "")?.[0];
      return record.certSerial !== serial || record.peerSerial !== serial;
    });
    expect(unrecorded).toEqual([]);
    expect(await invariantViolations(cluster.database.sql)).toEqual([]);
  }

  test("delivers one certificate per token", async () => {
    const enrollment = await seedEnrollment(cluster.database.sql);
    const callsBefore = cluster.fake.signCalls;

    const outcomes = await race(await attemptsFor([enrollment], 200));

    await expectOnePerToken([enrollment], outcomes);
    expect(cluster.fake.signCalls - callsBefore).toBe(1);
  });

  test("delivers one certificate for each of 100 tokens", async () => {
    const enrollments: SeededEnrollment[] = [];
    for (let i = 0; i < 100; i++) enrollments.push(await seedEnrollment(cluster.database.sql));
    const callsBefore = cluster.fake.signCalls;

    const outcomes = await race(await attemptsFor(enrollments, 10));

    await expectOnePerToken(enrollments, outcomes);
    // Every token delivered one certificate, so 100 calls means one call per token.
    expect(cluster.fake.signCalls - callsBefore).toBe(100);
  });
});

/** Sends `count` redeems of an unknown token at once, alternating between the instances. */
async function burst(cluster: Cluster, count: number, headers: Record<string, string> = {}) {
  const csr = await makeCsr(await generateKey(), { commonName: "rate-limited" });
  const token = generateToken();
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const instance = index % 2;
      const response = await cluster.setup.redeem(
        cluster.instances[instance] as ServiceProcess,
        token,
        csr,
        headers,
      );
      await response.arrayBuffer();
      return { instance, response };
    }),
  );
}

const limitEnv = {
  REDEEM_RATE_LIMIT: String(RATE_LIMIT),
  REDEEM_RATE_WINDOW_SECONDS: String(RATE_WINDOW_SECONDS),
};

describe.skipIf(!usingPostgres)("postgres rate limit across two instances", () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({
      ...limitEnv,
      RATE_LIMIT_STORE: "postgres",
      TRUST_PROXY: "true",
    });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  test("lets the limit through once", async () => {
    const results = await burst(cluster, 4 * RATE_LIMIT);

    const passed = results.filter(({ response }) => response.status !== 429);
    expect(passed).toHaveLength(RATE_LIMIT);
    expect(passed.filter(({ response }) => response.status !== 404)).toEqual([]);
    const remaining = passed.map(({ response }) => response.headers.get("ratelimit-remaining"));
    expect(remaining.sort()).toEqual(["0", "1", "2", "3", "4"]);

    const limited = results.filter(({ response }) => response.status === 429);
    for (const { response } of limited) {
      const retryAfter = Number(response.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(RATE_WINDOW_SECONDS);
      expect(response.headers.get("ratelimit-limit")).toBe(String(RATE_LIMIT));
      expect(response.headers.get("ratelimit-remaining")).toBe("0");
      expect(response.headers.get("ratelimit-reset")).toBe(String(retryAfter));
      expect(response.headers.get("ratelimit-policy")).toBe(
        `${RATE_LIMIT};w=${RATE_WINDOW_SECONDS}`,
      );
    }
  });

  test("counts each client separately", async () => {
    // TRUST_PROXY makes the last X-Forwarded-For entry the client address.
    const clients = ["198.51.100.7", "198.51.100.8"];
    const results = await Promise.all(
      clients.map((client) => burst(cluster, 2 * RATE_LIMIT, { "x-forwarded-for": client })),
    );

    for (const [index, client] of clients.entries()) {
      const passed = (results[index] ?? []).filter(({ response }) => response.status !== 429);
      expect({ client, passed: passed.length }).toEqual({ client, passed: RATE_LIMIT });
    }
  });
});

describe.skipIf(!usingPostgres)("memory rate limit across two instances", () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ ...limitEnv, RATE_LIMIT_STORE: "memory" });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  // Each process counts alone, so N instances let N times the limit through: the reason the
  // postgres store exists.
  test("lets the limit through once per instance", async () => {
    const results = await burst(cluster, 4 * RATE_LIMIT);

    for (const instance of [0, 1]) {
      const passed = results.filter(
        (result) => result.instance === instance && result.response.status !== 429,
      );
      expect({ instance, passed: passed.length }).toEqual({ instance, passed: RATE_LIMIT });
    }
  });
});
