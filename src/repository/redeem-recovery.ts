import type { SignedCertificate } from "../ca/authority.ts";
import { isDatabaseUnavailable } from "../http/error-handler.ts";
import { ProblemError } from "../http/problem.ts";
import { writeAudit } from "./audit.ts";
import type { RedeemDeps, RedeemInput } from "./redeem.ts";
import type { TokenState } from "./redeem-state.ts";

/**
 * How long the recovery waits for the token's row lock. A transaction whose client vanished keeps
 * its locks until the server notices, which on a dead network can take as long as TCP keepalive.
 */
const RECOVERY_LOCK_TIMEOUT = "5s";

/** Outcome of a failed final transaction, as read back from the token. */
type Aftermath = "committed" | "released" | "lost";

/** Revokes a certificate that was signed but will not be delivered. Failures are only logged. */
export async function revokeUndelivered(deps: RedeemDeps, serialNumber: string): Promise<void> {
  try {
    await deps.ca.revoke(serialNumber, "superseded");
  } catch (error) {
    deps.logger.error(
      { err: error, serial: serialNumber },
      "revoking an undelivered certificate failed",
    );
  }
}

/** Maps a failed final transaction to the problem the error handler would return. */
function finalizeProblem(error: unknown): ProblemError {
  const code = isDatabaseUnavailable(error) ? "database_unavailable" : "internal_error";
  return new ProblemError(code, { cause: error });
}

/**
 * Handles a final transaction that failed with anything but a lost claim. Returns only when the
 * transaction turns out to have committed, so that the caller delivers the certificate. Otherwise
 * it revokes the certificate and throws. A claim that is still this request's is released and the
 * failure audited first; a claim that another redeem took over ends in token_gone.
 *
 * A lost connection does not say whether the server committed: the COMMIT may have been applied
 * and only the reply lost. So the token is read again under its row lock, which also waits for
 * the server to roll back a transaction whose connection it has not yet seen close.
 */
export async function recoverFailedFinalize(
  deps: RedeemDeps,
  input: RedeemInput,
  state: TokenState,
  claimId: string,
  signed: SignedCertificate,
  error: unknown,
): Promise<void> {
  const problem = finalizeProblem(error);
  const ids = { tokenId: state.id, grantId: state.grantId, requestId: input.requestId };
  let aftermath: Aftermath;
  try {
    aftermath = await settleClaim(deps, input, state, claimId, signed, problem);
  } catch (settleError) {
    // The outcome stays unknown: the claim's lease runs out on its own, and a retry with the same
    // key gets this certificate if it was committed. The serial is logged so that an operator can
    // revoke it otherwise.
    deps.logger.error(
      { err: error, settleError, serial: signed.serialNumber, ...ids },
      "final redeem transaction failed and its outcome is unknown",
    );
    throw problem;
  }
  if (aftermath === "committed") {
    deps.logger.warn(
      { err: error, serial: signed.serialNumber, ...ids },
      "final redeem transaction committed although its connection failed",
    );
    return;
  }
  deps.logger.error(
    { err: error, serial: signed.serialNumber, aftermath, ...ids },
    "final redeem transaction failed; the certificate is not delivered",
  );
  await revokeUndelivered(deps, signed.serialNumber);
  if (aftermath === "lost") throw new ProblemError("token_gone");
  throw problem;
}

async function settleClaim(
  deps: RedeemDeps,
  input: RedeemInput,
  state: TokenState,
  claimId: string,
  signed: SignedCertificate,
  problem: ProblemError,
): Promise<Aftermath> {
  return deps.sql.begin(async (tx) => {
    await tx.unsafe(`set local lock_timeout = '${RECOVERY_LOCK_TIMEOUT}'`);
    const [token] = await tx<{ claimId: string | null; certSerial: string | null }[]>`
      select claim_id, cert_serial from federation_enrollment_tokens
      where id = ${state.id}
      for update
    `;
    if (token?.certSerial === signed.serialNumber) return "committed";
    if (token?.claimId !== claimId) return "lost";
    await tx`
      update federation_enrollment_tokens
      set claim_id = null, claim_expires_at = null, failed_attempts = failed_attempts + 1
      where id = ${state.id}
    `;
    await writeAudit(tx, {
      actor: `peer:${state.peerId}`,
      verb: "enrollment.redeem",
      resource: "enrollment_token",
      resourceId: state.id,
      statusCode: problem.status,
      outcome: "failure",
      requestId: input.requestId,
      detail: { grantId: state.grantId, reason: problem.code },
    });
    return "released";
  });
}
