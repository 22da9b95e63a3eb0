import "reflect-metadata";
import { AsnConvert } from "@peculiar/asn1-schema";
import * as asn1X509 from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import { decodeUtf8String } from "../../ca/identity-extensions.ts";
import { EnrollError, EXIT } from "./errors.ts";
import type { PeerKey } from "./key.ts";
import type { EnrollmentResponse } from "./redeem.ts";
import { type PinnedRoot, splitCertificates } from "./trust.ts";

/** How far ahead of this machine's clock a notBefore may be, for a peer whose clock is slow. */
const CLOCK_SKEW_MS = 5 * 60_000;

export interface VerifiedEnrollment {
  certificatePem: string;
  /** The leaf, then the intermediates, without the root. */
  chainPem: string;
}

function fail(message: string): never {
  throw new EnrollError(
    EXIT.verification,
    `the issued certificate failed verification: ${message}`,
  );
}

function parse(pem: string, field: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem);
  } catch {
    return fail(`${field} is not a PEM certificate`);
  }
}

function sameDer(a: x509.X509Certificate, b: x509.X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

function checkDates(certificate: x509.X509Certificate, now: number): void {
  if (certificate.notAfter.getTime() <= now) {
    fail(`"${certificate.subject}" expired at ${certificate.notAfter.toISOString()}`);
  }
  if (certificate.notBefore.getTime() > now + CLOCK_SKEW_MS) {
    fail(
      `"${certificate.subject}" is valid only from ${certificate.notBefore.toISOString()}; ` +
        "check this machine's clock",
    );
  }
}

/** Checks names, signatures, CA flags and dates from the leaf up to the pinned root. */
async function checkPath(path: x509.X509Certificate[], root: x509.X509Certificate): Promise<void> {
  const now = Date.now();
  for (const [index, certificate] of path.entries()) {
    const issuer = path[index + 1] ?? root;
    if (certificate.issuer !== issuer.subject) {
      fail(
        `"${certificate.subject}" is issued by "${certificate.issuer}", not "${issuer.subject}"`,
      );
    }
    const signed = await certificate
      .verify({ publicKey: issuer.publicKey, signatureOnly: true })
      .catch(() => false);
    if (!signed) fail(`the signature on "${certificate.subject}" does not verify`);
    if (index > 0) {
      const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
      if (!constraints?.ca) fail(`intermediate "${certificate.subject}" is not a CA certificate`);
    }
    checkDates(certificate, now);
  }
  checkDates(root, now);
}

/**
 * Finds the two identity extensions: `<arc>.1` holding the grant id and `<arc>.2` holding the peer
 * id, each a UTF8String. The arc is the service's CERT_OID_ARC, which the peer does not need to
 * know: it is found through the ids that the redeem response names.
 */
function checkIdentity(leaf: x509.X509Certificate, grantId: string, peerId: string): void {
  const parsed = AsnConvert.parse(leaf.rawData, asn1X509.Certificate);
  const values = new Map<string, string>();
  for (const extension of parsed.tbsCertificate.extensions ?? []) {
    const text = decodeUtf8String(new Uint8Array(extension.extnValue.buffer));
    if (text !== undefined) values.set(extension.extnID, text);
  }
  for (const [oid, value] of values) {
    if (value === grantId && oid.endsWith(".1") && values.get(`${oid.slice(0, -2)}.2`) === peerId) {
      return;
    }
  }
  fail(`it lacks the identity extensions for grant ${grantId} and peer ${peerId}`);
}

/**
 * Verifies the redeem response before anything is written: the chain leads to the pinned root,
 * the certificate contains this machine's public key, and it carries both identity extensions.
 */
export async function verifyEnrollment(
  response: EnrollmentResponse,
  key: PeerKey,
  root: PinnedRoot,
): Promise<VerifiedEnrollment> {
  const leaf = parse(response.certificate, "certificate");
  const chain = splitCertificates(response.certificateChain).map((pem) =>
    parse(pem, "certificateChain"),
  );
  const [first] = chain;
  if (!first || !sameDer(first, leaf)) fail("certificateChain does not start with certificate");
  const rootCertificate = new x509.X509Certificate(root.pem);
  // The chain should stop below the root; a root included anyway is dropped, not trusted.
  const intermediates = chain.slice(1).filter((item) => !sameDer(item, rootCertificate));
  const path = [leaf, ...intermediates];

  await checkPath(path, rootCertificate);
  if (!Buffer.from(leaf.publicKey.rawData).equals(key.spki)) {
    fail("its public key is not the key generated for this enrollment");
  }
  checkIdentity(leaf, response.grant.id, response.peer.id);
  const pemOf = (certificate: x509.X509Certificate) => `${certificate.toString("pem").trim()}\n`;
  return { certificatePem: pemOf(leaf), chainPem: path.map(pemOf).join("") };
}
