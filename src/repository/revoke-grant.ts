import type { Logger } from "pino";
import {
  type CertificateAuthority,
  REVOCATION_REASONS,
  type RevocationReason,
} from "../ca/authority.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/connect.ts";
import { ProblemError } from "../http/problem.ts";
import { writeAudit } from "./audit.ts";
import { type Grant, getGrant } from "./grants.ts";
import type { ActorContext } from "./peers.ts";
import { caProblem } from "./redeem-response.ts";

export interface CertRevocationSettings {
  /**
   * How long an attempt holds a pending revocation before another instance may take it over: longer
   * than a CA call lasts, so that live attempts are not doubled. Should one be, no harm is done, as
   * revoking a revoked certificate succeeds.
   */
  leaseSeconds: number;
  /** Delay before the first retry; each further failure doubles it, up to maxBackoffSeconds. */
  retryIntervalSeconds: number;
  maxBackoffSeconds: number;
}

/** The settings from the configuration. */
export function certRevocationSettings(config: Config): CertRevocationSettings {
  return {
    // step-ca calls without a signal of their own, such as revocations, end after 10 s.
    leaseSeconds: Math.max(config.claimLeaseSeconds, 30),
    retryIntervalSeconds: config.REVOCATION_RETRY_INTERVAL_SECONDS,
    maxBackoffSeconds: config.REVOCATION_RETRY_MAX_BACKOFF_SECONDS,
  };
}

export interface CertRevocationDeps {
  sql: Sql;
  ca: CertificateAuthority;
  logger: Logger;
  settings: CertRevocationSettings;
}

/** A certificate whose revocation at the CA is still to be done. */
export interface PendingCertRevocation {
  grantId: string;
  peerId: string;
  serial: string;
  reason: RevocationReason;
}

/** The actor of audit rows written by the background retrier. */
export const RETRIER_ACTOR = "system:revocation-retrier";

export function isRevocationReason(value: unknown): value is RevocationReason {
  return typeof value === "string" && Object.hasOwn(REVOCATION_REASONS, value);
}

interface RevokedInDatabase {
  changed: boolean;
  pending?: PendingCertRevocation;
}

/**
 * Revokes a grant: in one transaction the grant becomes `revoked`, its unused tokens are revoked,
 * the peer's current certificate is marked revoked when this grant issued it, and each step gets
 * an audit row. Then the grant's certificate is revoked at the CA. When that fails the grant stays
 * revoked and the CA revocation stays `pending` for the retrier. Revoking a revoked grant changes
 * nothing and returns it as it is. Throws `not_found` for an unknown grant.
 */
export async function revokeGrant(
  deps: CertRevocationDeps,
  input: { grantId: string; reason: RevocationReason },
  context: ActorContext,
): Promise<Grant> {
  const { grantId, reason } = input;
  const result = await deps.sql.begin(async (tx): Promise<RevokedInDatabase> => {
    // Rows are locked in the order redeem's final transaction writes them (token, grant, peer), so
    // that a concurrent redeem either commits first, and its certificate is revoked here, or waits
    // and then finds its token revoked, and delivers nothing.
    await tx`
      select id from federation_enrollment_tokens where grant_id = ${grantId} order by id for update
    `;
    const [grant] = await tx<{ status: string; peerId: string }[]>`
      select status, peer_id from federation_grants where id = ${grantId} for update
    `;
    if (!grant) throw new ProblemError("not_found", { detail: `no grant with id ${grantId}` });
    if (grant.status === "revoked") return { changed: false };

    const [issued] = await tx<{ certSerial: string }[]>`
      select cert_serial from federation_enrollment_tokens
      where grant_id = ${grantId} and used_at is not null and cert_serial is not null
      order by used_at desc
      limit 1
    `;
    const serial = issued?.certSerial ?? null;
    await tx`
      update federation_grants
      set status = 'revoked', revoked_at = now(), revoke_reason = ${reason},
        cert_revocation = ${serial ? "pending" : null},
        cert_revocation_next_at = ${serial ? tx`now() + make_interval(secs => ${deps.settings.leaseSeconds})` : null}
      where id = ${grantId}
    `;
    const tokens = await tx<{ id: string }[]>`
      update federation_enrollment_tokens
      set revoked_at = now(), claim_id = null, claim_expires_at = null
      where grant_id = ${grantId} and used_at is null and revoked_at is null
      returning id
    `;
    let peerCertificateRevoked = false;
    if (serial) {
      const peers = await tx`
        update federation_peers
        set cert_revoked_at = now(), cert_revocation_reason = ${reason}, updated_at = now()
        where id = ${grant.peerId} and cert_serial = ${serial} and cert_revoked_at is null
        returning id
      `;
      peerCertificateRevoked = peers.length > 0;
    }

    await writeAudit(tx, {
      ...context,
      verb: "grant.revoke",
      resource: "grant",
      resourceId: grantId,
      statusCode: 200,
      outcome: "success",
      detail: {
        peerId: grant.peerId,
        reason,
        previousStatus: grant.status,
        certSerial: serial,
        certRevocation: serial ? "pending" : null,
        peerCertificateRevoked,
        tokensRevoked: tokens.map((token) => token.id),
      },
    });
    for (const token of tokens) {
      await writeAudit(tx, {
        ...context,
        verb: "token.revoke",
        resource: "enrollment_token",
        resourceId: token.id,
        statusCode: 200,
        outcome: "success",
        detail: { grantId, cause: "grant_revoked" },
      });
    }
    return {
      changed: true,
      pending: serial ? { grantId, peerId: grant.peerId, serial, reason } : undefined,
    };
  });

  if (result.pending) {
    await attemptCertRevocation(deps, result.pending, context);
  }
  return getGrant(deps.sql, grantId);
}

/**
 * Makes one attempt to revoke a certificate at the CA and records it: on success the grant's
 * revocation becomes `done`; on failure the attempt is counted, the problem code is kept and the
 * next attempt is scheduled with exponential backoff. Every attempt writes an audit row. The
 * caller holds the revocation's lease. Returns true when the CA revoked the certificate.
 */
export async function attemptCertRevocation(
  deps: CertRevocationDeps,
  pending: PendingCertRevocation,
  context: ActorContext,
): Promise<boolean> {
  const { sql, logger, settings } = deps;
  const base = { grantId: pending.grantId, peerId: pending.peerId, serial: pending.serial };
  try {
    await deps.ca.revoke(pending.serial, pending.reason);
  } catch (error) {
    const problem = caProblem(error);
    await sql.begin(async (tx) => {
      const [row] = await tx<{ attempts: number; nextAt: Date }[]>`
        update federation_grants
        set cert_revocation_attempts = cert_revocation_attempts + 1,
          cert_revocation_error = ${problem.code},
          cert_revocation_next_at = now() + make_interval(
            secs => least(
              ${settings.retryIntervalSeconds}::float8 * power(2, cert_revocation_attempts),
              ${settings.maxBackoffSeconds}::float8
            )
          )
        where id = ${pending.grantId} and cert_revocation = 'pending'
        returning cert_revocation_attempts as attempts, cert_revocation_next_at as next_at
      `;
      // Another instance finished the revocation meanwhile: nothing left to record.
      if (!row) return;
      logger.warn(
        { err: error, ...base, attempt: row.attempts, nextAttemptAt: row.nextAt },
        "revoking a certificate at the CA failed; it will be retried",
      );
      await writeAudit(tx, {
        ...context,
        verb: "certificate.revoke",
        resource: "grant",
        resourceId: pending.grantId,
        statusCode: problem.status,
        outcome: "failure",
        detail: {
          ...base,
          reason: pending.reason,
          ca: deps.ca.kind,
          attempt: row.attempts,
          error: problem.code,
          certRevocation: "pending",
          nextAttemptAt: row.nextAt.toISOString(),
        },
      });
    });
    return false;
  }
  await sql.begin(async (tx) => {
    const [row] = await tx<{ attempts: number }[]>`
      update federation_grants
      set cert_revocation = 'done', cert_revoked_at = now(),
        cert_revocation_attempts = cert_revocation_attempts + 1,
        cert_revocation_error = null, cert_revocation_next_at = null
      where id = ${pending.grantId} and cert_revocation = 'pending'
      returning cert_revocation_attempts as attempts
    `;
    if (!row) return;
    logger.info({ ...base, attempt: row.attempts }, "certificate revoked at the CA");
    await writeAudit(tx, {
      ...context,
      verb: "certificate.revoke",
      resource: "grant",
      resourceId: pending.grantId,
      statusCode: 200,
      outcome: "success",
      detail: {
        ...base,
        reason: pending.reason,
        ca: deps.ca.kind,
        attempt: row.attempts,
        certRevocation: "done",
      },
    });
  });
  return true;
}

/**
 * Takes up to `limit` due pending revocations and moves their next attempt past the lease, in one
 * statement. `for update skip locked` lets instances that run this at the same moment take
 * disjoint sets, and the moved lease keeps a taken revocation from being taken again until the
 * attempt is over or its holder died.
 */
export async function claimDueRevocations(
  deps: CertRevocationDeps,
  limit: number,
): Promise<PendingCertRevocation[]> {
  const rows = await deps.sql<
    { grantId: string; peerId: string; serial: string | null; revokeReason: string | null }[]
  >`
    with due as (
      select id from federation_grants
      where cert_revocation = 'pending'
        and (cert_revocation_next_at is null or cert_revocation_next_at <= now())
      order by cert_revocation_next_at nulls first, id
      limit ${limit}
      for update skip locked
    )
    update federation_grants g
    set cert_revocation_next_at = now() + make_interval(secs => ${deps.settings.leaseSeconds})
    from due
    where g.id = due.id
    returning g.id as grant_id, g.peer_id, g.revoke_reason,
      (
        select t.cert_serial from federation_enrollment_tokens t
        where t.grant_id = g.id and t.used_at is not null and t.cert_serial is not null
        order by t.used_at desc
        limit 1
      ) as serial
  `;
  const claimed: PendingCertRevocation[] = [];
  for (const row of rows) {
    if (!row.serial) {
      // Cannot happen through the API: a pending revocation always has an issued certificate.
      deps.logger.error({ grantId: row.grantId }, "pending revocation without a certificate");
      await deps.sql`
        update federation_grants set cert_revocation = null, cert_revocation_next_at = null
        where id = ${row.grantId} and cert_revocation = 'pending'
      `;
      continue;
    }
    claimed.push({
      grantId: row.grantId,
      peerId: row.peerId,
      serial: row.serial,
      reason: isRevocationReason(row.revokeReason) ? row.revokeReason : "unspecified",
    });
  }
  return claimed;
}
