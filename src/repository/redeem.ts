import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { CertificateAuthority, SignedCertificate } from "../ca/authority.ts";
import { checkIssuedCertificate } from "../ca/check-issued.ts";
import type { Sql } from "../db/connect.ts";
import { CsrError, checkCsrIdentity, type ParsedCsr, parseCsr } from "../enrollment/csr.ts";
import { hashToken, isWellFormedToken } from "../enrollment/token-format.ts";
import { ProblemError } from "../http/problem.ts";
import { writeAudit } from "./audit.ts";
import { recoverFailedFinalize, revokeUndelivered } from "./redeem-recovery.ts";
import {
  audit,
  lostRace,
  recordInvalidCsr,
  rejectGone,
  rejectUnknown,
  releaseClaim,
} from "./redeem-rejections.ts";
import { caProblem, type EnrollmentBody, enrollmentBody } from "./redeem-response.ts";
import { classifyToken, lookupToken, type TokenState } from "./redeem-state.ts";

export interface RedeemSettings {
  certTtlSeconds: number;
  caTimeoutSeconds: number;
  claimLeaseSeconds: number;
  maxFailedAttempts: number;
  replayWindowSeconds: number;
  oidArc: string;
}

/** Outcomes counted by metrics. */
export type RedeemOutcome =
  | "issued"
  | "replayed"
  | "not_found"
  | "gone"
  | "invalid_csr"
  | "ca_error"
  | "lost_claim";

export interface RedeemDeps {
  sql: Sql;
  ca: CertificateAuthority;
  settings: RedeemSettings;
  logger: Logger;
  onOutcome?: (outcome: RedeemOutcome) => void;
}

export interface RedeemInput {
  token: string;
  csrPem: string;
  requestId: string | null;
}

export interface RedeemResult {
  /** True when a peer whose response was lost got its certificate again. */
  replayed: boolean;
  body: EnrollmentBody;
}

/** Raised inside the final transaction when the claim or the grant changed under us. */
class LostClaimError extends Error {
  override name = "LostClaimError";
}

/**
 * Trades an enrollment token and a CSR for a client certificate.
 *
 * Order matters for the invariants. The token format and the CSR are checked before any claim.
 * The token is claimed by one atomic UPDATE before the CA is called, and the CA call happens
 * outside any transaction. Then one transaction marks the token used, activates the grant,
 * records the serial on the peer and writes the audit row, but only while the claim is ours.
 */
export async function redeem(deps: RedeemDeps, input: RedeemInput): Promise<RedeemResult> {
  const outcome = (name: RedeemOutcome) => deps.onOutcome?.(name);
  // A mistyped token fails its checksum and is rejected without touching the database. It gets
  // the same 404 body as an unknown token; only its latency differs, and that reveals nothing,
  // since the checksum is public.
  if (!isWellFormedToken(input.token)) {
    outcome("not_found");
    throw new ProblemError("token_not_found");
  }
  const csrResult = await parseCsr(input.csrPem).catch((error: unknown) => {
    if (error instanceof CsrError) return error;
    throw error;
  });
  // An unknown token costs the same CSR parse, lookup and audit write as a used one, so neither
  // the answer nor its latency tells a never-issued token from a used or revoked one.
  const tokenHash = hashToken(input.token);
  const state = await lookupToken(deps.sql, tokenHash, deps.settings.replayWindowSeconds);
  if (!state) return rejectUnknown(deps, input);
  const csr = csrResult instanceof CsrError ? undefined : csrResult;
  const verdict = classifyToken(state, csr, deps.settings.maxFailedAttempts);
  if (verdict.kind === "replay") {
    outcome("replayed");
    await audit(deps.sql, input, state, 200, "success", "enrollment.replay", {});
    return { replayed: true, body: enrollmentBody(state, deps.ca.roots()) };
  }
  if (verdict.kind === "gone") {
    await rejectGone(deps, input, state, verdict.reason, verdict.leak);
  }
  const csrError = csrResult instanceof CsrError ? csrResult : identityError(csrResult, state);
  if (csrError || !csr) {
    await recordInvalidCsr(deps, input, state, csrError ?? new CsrError("invalid CSR"));
  }
  return issue(deps, input, state, csr as ParsedCsr);
}

function identityError(csr: ParsedCsr, state: TokenState): CsrError | undefined {
  try {
    checkCsrIdentity(csr, { id: state.peerId, name: state.peerName });
    return undefined;
  } catch (error) {
    if (error instanceof CsrError) return error;
    throw error;
  }
}

async function issue(
  deps: RedeemDeps,
  input: RedeemInput,
  state: TokenState,
  csr: ParsedCsr,
): Promise<RedeemResult> {
  const { sql, settings } = deps;
  const claimId = randomUUID();
  const [claimed] = await sql`
    update federation_enrollment_tokens t
    set claim_id = ${claimId}, claim_expires_at = now() + make_interval(secs => ${settings.claimLeaseSeconds})
    where t.id = ${state.id}
      and t.used_at is null and t.revoked_at is null and t.expires_at > now()
      and t.failed_attempts < ${settings.maxFailedAttempts}
      and (t.claim_id is null or t.claim_expires_at <= now())
      and exists (select 1 from federation_grants g where g.id = t.grant_id and g.status = 'pending')
    returning t.id
  `;
  if (!claimed) return lostRace(deps, input, csr);

  let signed: SignedCertificate | undefined;
  try {
    signed = await deps.ca.sign({
      csrPem: csr.pem,
      commonName: state.peerName,
      peerId: state.peerId,
      grantId: state.grantId,
      lifetimeSeconds: settings.certTtlSeconds,
      signal: AbortSignal.timeout(settings.caTimeoutSeconds * 1000),
    });
    checkIssuedCertificate(signed, {
      spki: csr.spki,
      commonName: state.peerName,
      grantId: state.grantId,
      peerId: state.peerId,
      oidArc: settings.oidArc,
    });
  } catch (error) {
    // The CA issued this certificate for a wrong key or name, so it is revoked before release.
    if (signed) await revokeUndelivered(deps, signed.serialNumber);
    await releaseClaim(deps, input, state, claimId, error);
    deps.onOutcome?.("ca_error");
    throw caProblem(error);
  }

  try {
    await finalize(deps, input, state, claimId, csr, signed);
  } catch (error) {
    if (error instanceof LostClaimError) {
      deps.onOutcome?.("lost_claim");
      deps.logger.warn(
        {
          tokenId: state.id,
          grantId: state.grantId,
          serial: signed.serialNumber,
          reason: error.message,
        },
        "redeem lost its claim after the CA signed; the certificate is not delivered",
      );
      await revokeUndelivered(deps, signed.serialNumber);
      throw new ProblemError("token_gone");
    }
    // Returns only when the transaction committed after all; otherwise it throws.
    await recoverFailedFinalize(deps, input, state, claimId, signed, error);
  }
  deps.onOutcome?.("issued");
  const issuedState: TokenState = {
    ...state,
    certificate: signed.certificatePem,
    certificateChain: signed.chainPem.join(""),
    certSerial: signed.serialNumber,
  };
  return { replayed: false, body: enrollmentBody(issuedState, deps.ca.roots(), signed) };
}

async function finalize(
  deps: RedeemDeps,
  input: RedeemInput,
  state: TokenState,
  claimId: string,
  csr: ParsedCsr,
  signed: SignedCertificate,
): Promise<void> {
  await deps.sql.begin(async (tx) => {
    // The four statements go out together, pipelined on the transaction's connection: one round
    // trip instead of four. The checks run after all of them and before the commit, so a lost
    // claim still rolls every one of them back.
    const [[token], [grant]] = await Promise.all([
      // Only the holder of the claim may mark the token used. After a lease ran out and another
      // request took the token over, this matches no row and nothing is delivered.
      tx`
        update federation_enrollment_tokens
        set used_at = now(), claim_id = null, claim_expires_at = null,
          cert_serial = ${signed.serialNumber}, key_fingerprint = ${csr.keyFingerprint},
          certificate = ${signed.certificatePem}, certificate_chain = ${signed.chainPem.join("")}
        where id = ${state.id} and claim_id = ${claimId} and used_at is null and revoked_at is null
        returning id
      `,
      tx`
        update federation_grants set status = 'active', activated_at = now()
        where id = ${state.grantId} and status = 'pending'
        returning id
      `,
      tx`
        update federation_peers
        set cert_serial = ${signed.serialNumber}, cert_not_after = ${signed.notAfter},
          cert_revoked_at = null, cert_revocation_reason = null, updated_at = now()
        where id = ${state.peerId}
      `,
      writeAudit(tx, {
        actor: `peer:${state.peerId}`,
        verb: "enrollment.redeem",
        resource: "enrollment_token",
        resourceId: state.id,
        statusCode: 201,
        outcome: "success",
        requestId: input.requestId,
        detail: {
          grantId: state.grantId,
          peerId: state.peerId,
          serial: signed.serialNumber,
          notAfter: signed.notAfter.toISOString(),
          keyType: csr.keyType,
        },
      }),
    ]);
    if (!token) throw new LostClaimError("the claim was taken over or the token was revoked");
    if (!grant) throw new LostClaimError("the grant is no longer pending");
  });
}
