// Races many redeems of the same tokens inside one process. Under PostgreSQL the requests really
// overlap across the pool's connections. Under PGlite the pool has one connection, so the database
// runs one statement at a time, but the requests still interleave between statements.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { SignRequest } from "../src/ca/authority.ts";
import { CountingCa, gate } from "./support/counting-ca.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import {
  invariantViolations,
  type SeededEnrollment,
  seedEnrollment,
  tokenRecords,
} from "./support/enrollment-state.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

let ctx: TestContext;
let ca: CountingCa;
/** Sign calls per grant id. */
const signCalls = new Map<string, number>();
/** Runs inside each sign call before the certificate is made; a test may hold the call here. */
let beforeSign: ((request: SignRequest) => Promise<void>) | undefined;

beforeAll(async () => {
  ctx = await createTestContext({
    ca: (builtin) => {
      ca = new CountingCa(builtin);
      ca.beforeSign = async (request) => {
        signCalls.set(request.grantId, (signCalls.get(request.grantId) ?? 0) + 1);
        await beforeSign?.(request);
      };
      return ca;
    },
  });
});

afterAll(async () => {
  await ctx?.close();
});

interface Attempt {
  token: string;
  csr: string;
  /** Label of the key behind the CSR; attempts with the same label share a key. */
  keyLabel: string;
}

interface Outcome extends Attempt {
  status: number;
  certificate?: string;
  serialNumber?: string;
  code?: string;
}

async function csrFor(enrollment: SeededEnrollment): Promise<string> {
  return makeCsr(await generateKey(), { commonName: enrollment.peerName });
}

/** Sends every attempt at once and collects the responses. */
async function race(attempts: Attempt[]): Promise<Outcome[]> {
  return Promise.all(
    attempts.map(async (attempt) => {
      const response = await ctx.redeem(attempt.token, attempt.csr);
      const body = (await response.json()) as Record<string, string>;
      return {
        ...attempt,
        status: response.status,
        certificate: body.certificate,
        serialNumber: body.serialNumber,
        code: body.code,
      };
    }),
  );
}

describe("redeem under concurrency", () => {
  test("delivers one certificate per token", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    const attempts: Attempt[] = [];
    for (let i = 0; i < 200; i++) {
      attempts.push({ token: enrollment.token, csr: await csrFor(enrollment), keyLabel: `k${i}` });
    }

    const outcomes = await race(attempts);

    const issued = outcomes.filter((outcome) => outcome.status === 201);
    expect(issued).toHaveLength(1);
    const others = outcomes.filter((outcome) => outcome.status !== 201);
    expect(others.filter((outcome) => outcome.code !== "token_gone")).toEqual([]);
    expect(signCalls.get(enrollment.grantId)).toBe(1);

    const [record] = await tokenRecords(ctx.sql, [enrollment.tokenId]);
    expect(record?.certSerial).toBe(issued[0]?.serialNumber as string);
    expect(record?.peerSerial).toBe(issued[0]?.serialNumber as string);
    expect(record?.grantStatus).toBe("active");
    expect(record?.successAudits).toBe(1);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });

  test("replays only to the same key", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    const sharedKey = await generateKey();
    const attempts: Attempt[] = [];
    for (let i = 0; i < 100; i++) {
      // A fresh CSR each time: the signatures differ, the public key does not.
      const shared = await makeCsr(sharedKey, { commonName: enrollment.peerName });
      attempts.push({ token: enrollment.token, csr: shared, keyLabel: "shared" });
      attempts.push({ token: enrollment.token, csr: await csrFor(enrollment), keyLabel: `k${i}` });
    }

    const outcomes = await race(attempts);

    const issued = outcomes.filter((outcome) => outcome.status === 201);
    expect(issued).toHaveLength(1);
    const delivered = issued[0] as Outcome;
    const replays = outcomes.filter((outcome) => outcome.status === 200);
    const winnerLabel = delivered.keyLabel;
    expect(replays.filter((outcome) => outcome.keyLabel !== winnerLabel)).toEqual([]);
    expect(replays.filter((outcome) => outcome.certificate !== delivered.certificate)).toEqual([]);
    const rest = outcomes.filter((outcome) => outcome.status !== 200 && outcome.status !== 201);
    expect(rest.filter((outcome) => outcome.status !== 410)).toEqual([]);
    expect(signCalls.get(enrollment.grantId)).toBe(1);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });

  test("delivers one certificate for each of 100 tokens", async () => {
    const enrollments: SeededEnrollment[] = [];
    for (let i = 0; i < 100; i++) enrollments.push(await seedEnrollment(ctx.sql));
    const attempts: Attempt[] = [];
    // Round robin, so that the ten attempts on each token are spread over the whole burst.
    for (let round = 0; round < 10; round++) {
      for (const enrollment of enrollments) {
        const csr = await csrFor(enrollment);
        attempts.push({ token: enrollment.token, csr, keyLabel: `${enrollment.tokenId}-${round}` });
      }
    }
    const callsBefore = ca.signCalls;

    const outcomes = await race(attempts);

    const statuses = new Set(outcomes.map((outcome) => outcome.status));
    expect([...statuses].sort()).toEqual([201, 410]);
    const deliveredByToken = new Map<string, Outcome[]>();
    for (const outcome of outcomes.filter((each) => each.status === 201)) {
      deliveredByToken.set(outcome.token, [
        ...(deliveredByToken.get(outcome.token) ?? []),
        outcome,
      ]);
    }
    const notExactlyOnce = enrollments.filter(
      (enrollment) => deliveredByToken.get(enrollment.token)?.length !== 1,
    );
    expect(notExactlyOnce.map((enrollment) => enrollment.tokenId)).toEqual([]);
    const extraCalls = enrollments.filter((enrollment) => signCalls.get(enrollment.grantId) !== 1);
    expect(extraCalls.map((enrollment) => enrollment.grantId)).toEqual([]);
    expect(ca.signCalls - callsBefore).toBe(100);

    const records = await tokenRecords(
      ctx.sql,
      enrollments.map((enrollment) => enrollment.tokenId),
    );
    const mismatched = records.filter((record) => {
      const enrollment = enrollments.find((each) => each.tokenId === record.tokenId);
      const delivered = deliveredByToken.get(enrollment?.token ?? "")?.[0];
      return (
        record.certSerial !== delivered?.serialNumber || record.peerSerial !== record.certSerial
      );
    });
    expect(mismatched).toEqual([]);
    expect(await invariantViolations(ctx.sql)).toEqual([]);
  });
});

describe("claim lease takeover", () => {
  test("rejects the late finisher", async () => {
    const enrollment = await seedEnrollment(ctx.sql);
    const reached = [gate(), gate()];
    const released = [gate(), gate()];
    let calls = 0;
    beforeSign = async () => {
      const call = calls++;
      reached[call]?.open();
      await released[call]?.promise;
    };
    try {
      const late = ctx.redeem(enrollment.token, await csrFor(enrollment));
      await reached[0]?.promise;
      await ctx.sql`
        update federation_enrollment_tokens set claim_expires_at = now() - interval '1 second'
        where id = ${enrollment.tokenId}
      `;
      const takeover = ctx.redeem(enrollment.token, await csrFor(enrollment));
      await reached[1]?.promise;

      // The first redeem finishes while the second owns the claim and waits on the CA.
      released[0]?.open();
      const lateResponse = await late;
      expect(lateResponse.status).toBe(410);
      const lateSerial = ca.signed.at(-1)?.serialNumber as string;
      expect(ca.revoked.map((entry) => entry.serialNumber)).toContain(lateSerial);
      const [claimed] = await tokenRecords(ctx.sql, [enrollment.tokenId]);
      expect(claimed?.used).toBe(false);
      expect(claimed?.claimId).not.toBeNull();

      released[1]?.open();
      const takeoverResponse = await takeover;
      expect(takeoverResponse.status).toBe(201);
      const delivered = (await takeoverResponse.json()) as { serialNumber: string };
      expect(delivered.serialNumber).not.toBe(lateSerial);
      const [record] = await tokenRecords(ctx.sql, [enrollment.tokenId]);
      expect(record?.certSerial).toBe(delivered.serialNumber);
      expect(record?.peerSerial).toBe(delivered.serialNumber);
      expect(await invariantViolations(ctx.sql)).toEqual([]);
    } finally {
      beforeSign = undefined;
      for (const each of released) each.open();
    }
  });
});
