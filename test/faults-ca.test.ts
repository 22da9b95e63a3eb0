// Redeems through the real step-ca client against a loopback step-ca stand-in that fails on
// purpose. After every fault the claim must be released, the failure counted and audited, no
// certificate delivered, and the same token must still enroll once the CA behaves again.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { CertificateAuthority } from "../src/ca/authority.ts";
import { StepCa } from "../src/ca/step-ca/step-ca.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import {
  invariantViolations,
  type SeededEnrollment,
  seedEnrollment,
  tokenRecord,
} from "./support/enrollment-state.ts";
import { type FakeMode, type FakeStepCa, startFakeStepCa } from "./support/fake-step-ca.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

/** step-ca 0.19 reads OID arcs as Go ints, so the test arc stays below 2^31. */
const OID_ARC = "1.3.6.1.4.1.55555.1";
const CA_TIMEOUT_SECONDS = 1;
/** Longer than the CA timeout, so that the client gives up first. */
const SLOW_ANSWER_MS = 2500;

let ctx: TestContext;
let fake: FakeStepCa;
let stopped: FakeStepCa;
let working: StepCa;
let refused: StepCa;
/** The CA the app calls; a test switches it to reach a step-ca that refuses connections. */
let current: CertificateAuthority;

async function openClient(target: FakeStepCa): Promise<StepCa> {
  return StepCa.open({
    url: target.url,
    rootPem: target.rootPem,
    provisionerName: target.provisionerName,
    provisionerKey: target.provisionerKey,
    oidArc: OID_ARC,
  });
}

beforeAll(async () => {
  fake = await startFakeStepCa({ oidArc: OID_ARC });
  stopped = await startFakeStepCa({ oidArc: OID_ARC });
  working = await openClient(fake);
  refused = await openClient(stopped);
  await stopped.stop();
  current = working;
  const switching: CertificateAuthority = {
    kind: "step-ca",
    sign: (request) => current.sign(request),
    revoke: (serial, reason) => current.revoke(serial, reason),
    roots: () => current.roots(),
    checkReady: () => current.checkReady(),
  };
  ctx = await createTestContext({
    env: { CERT_OID_ARC: OID_ARC, CA_TIMEOUT_SECONDS: String(CA_TIMEOUT_SECONDS) },
    ca: () => switching,
  });
});

afterEach(() => {
  fake.mode = { kind: "ok" };
  current = working;
});

afterAll(async () => {
  await ctx?.close();
  await working?.close();
  await refused?.close();
  await fake?.stop();
});

async function redeem(enrollment: SeededEnrollment): Promise<Response> {
  return ctx.redeem(
    enrollment.token,
    await makeCsr(await generateKey(), { commonName: enrollment.peerName }),
  );
}

async function failureReasons(tokenId: string): Promise<string[]> {
  const rows = await ctx.sql<{ reason: string }[]>`
    select detail->>'reason' as reason from federation_audit_log
    where resource_id = ${tokenId} and verb = 'enrollment.redeem' and outcome = 'failure'
    order by id
  `;
  return rows.map((row) => row.reason);
}

interface Fault {
  name: string;
  mode: FakeMode | "refused";
  status: number;
  code: string;
  /** The CA issued a certificate that failed the identity check, so it must be revoked. */
  revokes: boolean;
}

const FAULTS: Fault[] = [
  {
    name: "connection refused",
    mode: "refused",
    status: 503,
    code: "ca_unavailable",
    revokes: false,
  },
  {
    name: "response slower than the timeout",
    mode: { kind: "slow", delayMs: SLOW_ANSWER_MS },
    status: 504,
    code: "ca_timeout",
    revokes: false,
  },
  {
    name: "status 500",
    mode: { kind: "status", status: 500 },
    status: 502,
    code: "ca_error",
    revokes: false,
  },
  {
    name: "status 503",
    mode: { kind: "status", status: 503 },
    status: 503,
    code: "ca_unavailable",
    revokes: false,
  },
  {
    name: "status 401",
    mode: { kind: "status", status: 401 },
    status: 502,
    code: "ca_rejected",
    revokes: false,
  },
  {
    name: "truncated body",
    mode: { kind: "truncated" },
    status: 502,
    code: "ca_error",
    revokes: false,
  },
  {
    name: "body that is not JSON",
    mode: { kind: "not-json" },
    status: 502,
    code: "ca_error",
    revokes: false,
  },
  {
    name: "certificate for another key",
    mode: { kind: "wrong-key" },
    status: 502,
    code: "ca_error",
    revokes: true,
  },
  {
    name: "certificate for another CN",
    mode: { kind: "wrong-cn" },
    status: 502,
    code: "ca_error",
    revokes: true,
  },
  {
    name: "connection hung up",
    mode: { kind: "hang-up" },
    status: 503,
    code: "ca_unavailable",
    revokes: false,
  },
];

describe("redeem when step-ca fails", () => {
  for (const fault of FAULTS) {
    test(`recovers from ${fault.name}`, async () => {
      const enrollment = await seedEnrollment(ctx.sql);
      if (fault.mode === "refused") current = refused;
      else fake.mode = fault.mode;
      const revokedBefore = fake.revokedSerials.length;
      const started = Date.now();

      const response = await redeem(enrollment);

      expect(response.status).toBe(fault.status);
      const body = (await response.json()) as Record<string, unknown>;
      expect(body.code).toBe(fault.code);
      expect(body.certificate).toBeUndefined();
      if (fault.mode !== "refused" && fault.mode.kind === "slow") {
        // Let the late response arrive, then check that it changed nothing.
        await Bun.sleep(Math.max(SLOW_ANSWER_MS - (Date.now() - started), 0) + 300);
      }
      const record = await tokenRecord(ctx.sql, enrollment.tokenId);
      expect(record.claimId).toBeNull();
      expect(record.failedAttempts).toBe(1);
      expect(record.used).toBe(false);
      expect(record.certSerial).toBeNull();
      expect(record.grantStatus).toBe("pending");
      expect(record.peerSerial).toBeNull();
      expect(await failureReasons(enrollment.tokenId)).toEqual([fault.code]);
      expect(fake.revokedSerials.length - revokedBefore).toBe(fault.revokes ? 1 : 0);

      fake.mode = { kind: "ok" };
      current = working;
      const retry = await redeem(enrollment);
      expect(retry.status).toBe(201);
      const issued = (await retry.json()) as { serialNumber: string };
      const after = await tokenRecord(ctx.sql, enrollment.tokenId);
      expect(after.certSerial).toBe(issued.serialNumber);
      expect(after.peerSerial).toBe(issued.serialNumber);
      expect(await invariantViolations(ctx.sql)).toEqual([]);
    });
  }
});
