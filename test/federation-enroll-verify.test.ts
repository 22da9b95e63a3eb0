// Checks that federation-enroll refuses a redeem response it cannot trust, before anything is
// written. The certificates are really signed, by built-in CAs in temporary directories.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { BuiltinCa } from "../src/ca/builtin/builtin-ca.ts";
import { certificateFingerprint } from "../src/ca/fingerprint.ts";
import { EnrollError } from "../src/cli/federation-enroll/errors.ts";
import { generatePeerKey, type PeerKey } from "../src/cli/federation-enroll/key.ts";
import type { EnrollmentResponse } from "../src/cli/federation-enroll/redeem.ts";
import type { PinnedRoot } from "../src/cli/federation-enroll/trust.ts";
import { verifyEnrollment } from "../src/cli/federation-enroll/verify.ts";
import { DEFAULT_OID_ARC } from "../src/config.ts";
import type { Sql } from "../src/db/connect.ts";

let workDir: string;
let ca: BuiltinCa;
let otherCa: BuiltinCa;
let key: PeerKey;

/** Opens a built-in CA; it needs a database only to record revocations, which these tests skip. */
function openCa(dir: string): Promise<BuiltinCa> {
  return BuiltinCa.open(undefined as unknown as Sql, {
    dir,
    oidArc: DEFAULT_OID_ARC,
    publicUrl: "https://enroll.test",
  });
}

function pinned(authority: BuiltinCa): PinnedRoot {
  const pem = authority.roots()[0] as string;
  return { pem, fingerprint: certificateFingerprint(pem), subject: "root" };
}

async function issue(
  authority: BuiltinCa,
  csrPem: string,
  ids = { grantId: randomUUID(), peerId: randomUUID() },
): Promise<EnrollmentResponse> {
  const signed = await authority.sign({
    csrPem,
    commonName: "peer-a.example.org",
    grantId: ids.grantId,
    peerId: ids.peerId,
    lifetimeSeconds: 3600,
  });
  return {
    certificate: signed.certificatePem,
    certificateChain: signed.certificatePem + signed.chainPem.join(""),
    serialNumber: signed.serialNumber,
    notAfter: signed.notAfter.toISOString(),
    grant: { id: ids.grantId, scopes: [] },
    peer: { id: ids.peerId, name: "peer-a.example.org" },
  };
}

/** Returns the EnrollError that verification throws, or undefined when it passes. */
async function verificationError(
  response: EnrollmentResponse,
  root: PinnedRoot,
  peerKey: PeerKey = key,
): Promise<EnrollError | undefined> {
  try {
    await verifyEnrollment(response, peerKey, root);
    return undefined;
  } catch (error) {
    if (error instanceof EnrollError) return error;
    throw error;
  }
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "fe-verify-"));
  ca = await openCa(path.join(workDir, "ca"));
  otherCa = await openCa(path.join(workDir, "other-ca"));
  key = await generatePeerKey("ec-p256");
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe("verifyEnrollment", () => {
  test("accepts a certificate for this key", async () => {
    const response = await issue(ca, key.csrPem);
    const verified = await verifyEnrollment(response, key, pinned(ca));
    expect(verified.chainPem).toBe(response.certificateChain);
  });

  test("rejects a certificate for another key", async () => {
    const other = await generatePeerKey("ec-p256");
    const error = await verificationError(await issue(ca, other.csrPem), pinned(ca));
    expect(error?.exitCode).toBe(8);
    expect(error?.message).toContain("not the key generated for this enrollment");
  });

  test("rejects a chain to another root", async () => {
    // Both built-in CAs use the same names, so only the intermediate's signature distinguishes them.
    const error = await verificationError(await issue(otherCa, key.csrPem), pinned(ca));
    expect(error?.exitCode).toBe(8);
    expect(error?.message).toContain('signature on "CN=Federation Enrollment Intermediate CA"');
  });

  test("rejects a forged signature", async () => {
    // Same names as the pinned chain, signed with another intermediate key.
    const response = await issue(otherCa, key.csrPem);
    const intermediate = ca.keys.intermediate.toString("pem");
    response.certificateChain = `${response.certificate.trim()}\n${intermediate}`;
    const error = await verificationError(response, pinned(ca));
    expect(error?.exitCode).toBe(8);
    expect(error?.message).toContain('signature on "CN=peer-a.example.org" does not verify');
  });

  test("rejects missing identity extensions", async () => {
    const response = await issue(ca, key.csrPem);
    response.grant.id = randomUUID();
    const error = await verificationError(response, pinned(ca));
    expect(error?.exitCode).toBe(8);
    expect(error?.message).toContain("lacks the identity extensions");
  });

  test("rejects a chain without the leaf first", async () => {
    const response = await issue(ca, key.csrPem);
    response.certificateChain = ca.keys.intermediate.toString("pem");
    const error = await verificationError(response, pinned(ca));
    expect(error?.exitCode).toBe(8);
    expect(error?.message).toContain("does not start with certificate");
  });
});
