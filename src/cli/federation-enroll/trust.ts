import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { certificateFingerprint } from "../../ca/fingerprint.ts";
import { EnrollError, EXIT } from "./errors.ts";
import { describeError, httpsRequest } from "./https.ts";

const ROOTS_TIMEOUT_MS = 30_000;
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/** The CA root that matched the admin's fingerprint; every later request trusts only it. */
export interface PinnedRoot {
  pem: string;
  /** Lowercase hex SHA-256 of the DER. */
  fingerprint: string;
  subject: string;
}

/** Splits a PEM bundle into its certificates, in order. */
export function splitCertificates(bundle: string): string[] {
  return bundle.match(PEM_CERTIFICATE) ?? [];
}

function fingerprintOf(pem: string): string | undefined {
  try {
    return certificateFingerprint(pem);
  } catch {
    return undefined;
  }
}

/**
 * Fetches GET /api/federation/ca/roots without verifying the server, as `step ca bootstrap` does,
 * and returns the root whose SHA-256 is `fingerprint`. The fingerprint is the trust anchor: a
 * server that serves no matching root never receives the token.
 */
export async function pinRoot(baseUrl: string, fingerprint: string): Promise<PinnedRoot> {
  const url = `${baseUrl}/api/federation/ca/roots`;
  let response: Awaited<ReturnType<typeof httpsRequest>>;
  try {
    response = await httpsRequest({ method: "GET", url, caPem: null, timeoutMs: ROOTS_TIMEOUT_MS });
  } catch (error) {
    throw new EnrollError(
      EXIT.unavailable,
      `cannot fetch the CA roots from ${url}: ${describeError(error)}`,
      { cause: error },
    );
  }
  if (response.status !== 200) {
    throw new EnrollError(
      response.status >= 500 ? EXIT.unavailable : EXIT.trust,
      `GET ${url} returned ${response.status}; check that --url is the enrollment service`,
    );
  }
  const roots = splitCertificates(response.body);
  for (const pem of roots) {
    if (fingerprintOf(pem) === fingerprint) {
      const subject = new x509.X509Certificate(pem).subject;
      return { pem: `${pem.trim()}\n`, fingerprint, subject };
    }
  }
  throw new EnrollError(
    EXIT.trust,
    `none of the ${roots.length} root certificate(s) served by ${baseUrl} has the SHA-256 ` +
      `fingerprint ${fingerprint}; the token was not sent. Check --url and --fingerprint ` +
      "with the admin who gave you the token.",
  );
}
