/** A request to a CA to sign a client certificate. Identity comes from the database, never from the CSR. */
export interface SignRequest {
  csrPem: string;
  /** Peer name: the certificate's common name. */
  commonName: string;
  peerId: string;
  grantId: string;
  lifetimeSeconds: number;
  signal?: AbortSignal;
}

export interface SignedCertificate {
  certificatePem: string;
  /** Intermediate certificates, nearest to the leaf first; the root is not included. */
  chainPem: string[];
  /** Lowercase hex without leading zero bytes, as openssl prints it but in lowercase. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * RFC 5280 CRLReason codes that an admin may give when revoking. cACompromise, aACompromise,
 * certificateHold and removeFromCRL are left out: they describe a CA or a reversible hold, not the
 * end of a peer's grant.
 */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;

export type RevocationReason = keyof typeof REVOCATION_REASONS;

/** Common contract of the built-in CA and the step-ca client. */
export interface CertificateAuthority {
  readonly kind: "builtin" | "step-ca";
  /** Signs a client certificate. Throws CaError on any failure. */
  sign(request: SignRequest): Promise<SignedCertificate>;
  /** Revokes a certificate by serial. Revoking an already revoked serial succeeds. */
  revoke(serialNumber: string, reason: RevocationReason): Promise<void>;
  /** Root certificates, PEM. */
  roots(): string[];
  /** Throws CaError when the CA cannot sign right now. */
  checkReady(): Promise<void>;
}

/**
 * How a CA call failed. The kind decides the HTTP status: unavailable 503, timeout 504, the
 * others 502. The message is for logs only; clients never see a CA's own wording.
 */
export type CaErrorKind = "unavailable" | "timeout" | "rejected" | "bad_response" | "internal";

export class CaError extends Error {
  override name = "CaError";

  constructor(
    readonly kind: CaErrorKind,
    message: string,
    options?: { cause?: unknown; upstreamStatus?: number },
  ) {
    super(message, { cause: options?.cause });
    this.upstreamStatus = options?.upstreamStatus;
  }

  readonly upstreamStatus: number | undefined;
}

/** Normalizes a hex serial: lowercase, no separators, no leading zero bytes. */
export function normalizeSerial(hex: string): string {
  let serial = hex.replace(/[^0-9a-fA-F]/g, "").toLowerCase();
  if (serial.length % 2 === 1) serial = `0${serial}`;
  while (serial.length > 2 && serial.startsWith("00")) serial = serial.slice(2);
  return serial;
}

/** Ends a PEM block with exactly one newline, so that blocks concatenate into a valid bundle. */
export function pemBlock(pem: string): string {
  return `${pem.trim()}\n`;
}
