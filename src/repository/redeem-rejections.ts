// How the redeem use case refuses a token or gives up on it: each path answers with a problem,
// reports its outcome and records the refusal in the audit log.
import { CaError } from "../ca/authority.ts";
import type { Db } from "../db/connect.ts";
import type { CsrError, ParsedCsr } from "../enrollment/csr.ts";
import { hashToken } from "../enrollment/token-format.ts";
import { ProblemError } from "../http/problem.ts";
import { writeAudit } from "./audit.ts";
import type { RedeemDeps, RedeemInput, RedeemResult } from "./redeem.ts";
import { caProblem, enrollmentBody } from "./redeem-response.ts";
import { classifyToken, lookupToken, type TokenState } from "./redeem-state.ts";

/** After a failed claim, a concurrent redeem with the same key may have finished: replay that. */
export async function lostRace(
  deps: RedeemDeps,
  input: RedeemInput,
  csr: ParsedCsr,
): Promise<RedeemResult> {
  const state = await lookupToken(
    deps.sql,
    hashToken(input.token),
    deps.settings.replayWindowSeconds,
  );
  if (state && classifyToken(state, csr, deps.settings.maxFailedAttempts).kind === "replay") {
    deps.onOutcome?.("replayed");
    await audit(deps.sql, input, state, 200, "success", "enrollment.replay", {});
    return { replayed: true, body: enrollmentBody(state, deps.ca.roots()) };
  }
  deps.onOutcome?.("gone");
  // Audited like every other refusal, so a client racing the real peer leaves a trace.
  if (state) {
    await audit(deps.sql, input, state, 410, "denied", "enrollment.redeem", {
      reason: "lost_race",
    });
  }
  throw new ProblemError("token_gone", {
    detail: "the enrollment token is being redeemed or was used",
  });
}

export async function rejectUnknown(deps: RedeemDeps, input: RedeemInput): Promise<never> {
  deps.onOutcome?.("not_found");
  // Also a brute-force signal: a run of these rows means someone is guessing tokens.
  await writeAudit(deps.sql, {
    actor: "anonymous",
    verb: "enrollment.redeem",
    resource: "enrollment_token",
    resourceId: null,
    statusCode: 404,
    outcome: "denied",
    requestId: input.requestId,
    detail: { reason: "unknown_token" },
  });
  throw new ProblemError("token_not_found");
}

export async function rejectGone(
  deps: RedeemDeps,
  input: RedeemInput,
  state: TokenState,
  reason: string,
  leak: boolean,
): Promise<never> {
  deps.onOutcome?.("gone");
  if (leak) {
    deps.logger.warn(
      { tokenId: state.id, grantId: state.grantId, reason, requestId: input.requestId },
      "enrollment token presented again; possible token leak",
    );
  }
  await audit(
    deps.sql,
    input,
    state,
    410,
    leak ? "possible_token_leak" : "denied",
    "enrollment.redeem",
    {
      reason,
    },
  );
  throw new ProblemError("token_gone");
}

export async function recordInvalidCsr(
  deps: RedeemDeps,
  input: RedeemInput,
  state: TokenState,
  error: CsrError,
): Promise<never> {
  // Counts toward the token's failure limit, so a stolen token cannot be probed indefinitely. The
  // limit is checked in the same statement, so concurrent failures cannot count past it.
  const counted = await deps.sql.begin(async (tx) => {
    const [row] = await tx`
      update federation_enrollment_tokens set failed_attempts = failed_attempts + 1
      where id = ${state.id} and failed_attempts < ${deps.settings.maxFailedAttempts}
      returning id
    `;
    if (!row) return false;
    await audit(tx, input, state, 400, "failure", "enrollment.redeem", {
      reason: "invalid_csr",
      message: error.message,
    });
    return true;
  });
  if (!counted) await rejectGone(deps, input, state, "too_many_failed_attempts", false);
  deps.onOutcome?.("invalid_csr");
  throw new ProblemError("invalid_csr", { detail: error.message });
}

/** Releases a claim after a failure so the token can be retried, and records the failure. */
export async function releaseClaim(
  deps: RedeemDeps,
  input: RedeemInput,
  state: TokenState,
  claimId: string,
  error: unknown,
): Promise<void> {
  const problem = caProblem(error);
  deps.logger.error(
    { err: error, tokenId: state.id, grantId: state.grantId, requestId: input.requestId },
    "certificate signing failed; releasing the claim",
  );
  await deps.sql.begin(async (tx) => {
    await tx`
      update federation_enrollment_tokens
      set claim_id = null, claim_expires_at = null, failed_attempts = failed_attempts + 1
      where id = ${state.id} and claim_id = ${claimId}
    `;
    await audit(tx, input, state, problem.status, "failure", "enrollment.redeem", {
      reason: problem.code,
      caErrorKind: error instanceof CaError ? error.kind : "internal",
    });
  });
}

export function audit(
  db: Db,
  input: RedeemInput,
  state: TokenState,
  statusCode: number,
  outcome: "success" | "failure" | "denied" | "possible_token_leak",
  verb: string,
  detail: Record<string, unknown>,
): Promise<void> {
  return writeAudit(db, {
    actor: `peer:${state.peerId}`,
    verb,
    resource: "enrollment_token",
    resourceId: state.id,
    statusCode,
    outcome,
    requestId: input.requestId,
    detail: { grantId: state.grantId, ...detail },
  });
}
