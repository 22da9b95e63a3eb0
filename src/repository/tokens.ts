import type { Db, Sql } from "../db/connect.ts";
import { generateToken, hashToken } from "../enrollment/token-format.ts";
import { ProblemError } from "../http/problem.ts";
import { writeAudit } from "./audit.ts";
import type { ActorContext } from "./peers.ts";

export type TokenStatus = "active" | "used" | "expired" | "revoked";

/** A token as admins see it: timestamps and status, never the secret or its hash. */
export interface TokenSummary {
  id: string;
  grantId: string;
  status: TokenStatus;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
  failedAttempts: number;
  certSerial: string | null;
}

export interface CreatedToken {
  id: string;
  /** The secret. It exists only in this return value and the HTTP response built from it. */
  token: string;
  grantId: string;
  expiresAt: Date;
}

/**
 * Creates a single-use token for a pending grant. Throws `not_found` for an unknown grant and
 * `grant_not_pending` otherwise. Expiry is computed by the database clock.
 */
export async function createToken(
  sql: Sql,
  input: { grantId: string; ttlSeconds: number },
  context: ActorContext,
): Promise<CreatedToken> {
  const token = generateToken();
  return sql.begin(async (tx) => {
    // Locks the grant row so that a concurrent revoke cannot slip between the check and the insert.
    const [grant] = await tx<{ status: string }[]>`
      select status from federation_grants where id = ${input.grantId} for share
    `;
    if (!grant)
      throw new ProblemError("not_found", { detail: `no grant with id ${input.grantId}` });
    if (grant.status !== "pending") {
      throw new ProblemError("grant_not_pending", {
        detail: `grant ${input.grantId} is ${grant.status}; tokens can only be created for a pending grant`,
      });
    }
    const [row] = await tx<{ id: string; expiresAt: Date }[]>`
      insert into federation_enrollment_tokens (token_hash, grant_id, created_by, expires_at)
      values (
        ${hashToken(token)}, ${input.grantId}, ${context.actor},
        now() + make_interval(secs => ${input.ttlSeconds})
      )
      returning id, expires_at
    `;
    if (!row) throw new Error("insert into federation_enrollment_tokens returned no row");
    await writeAudit(tx, {
      ...context,
      verb: "token.create",
      resource: "enrollment_token",
      resourceId: row.id,
      statusCode: 201,
      outcome: "success",
      detail: { grantId: input.grantId, expiresAt: row.expiresAt.toISOString() },
    });
    return { id: row.id, token, grantId: input.grantId, expiresAt: row.expiresAt };
  });
}

/** Lists a grant's tokens, newest first. */
export async function listTokens(db: Db, grantId: string): Promise<TokenSummary[]> {
  return db<TokenSummary[]>`
    select id, grant_id, created_by, created_at, expires_at, used_at, revoked_at, failed_attempts,
      cert_serial,
      case
        when used_at is not null then 'used'
        when revoked_at is not null then 'revoked'
        when expires_at <= now() then 'expired'
        else 'active'
      end as status
    from federation_enrollment_tokens
    where grant_id = ${grantId}
    order by created_at desc, id
  `;
}

/**
 * Revokes an unused token. Revoking a revoked token succeeds again; a used token throws
 * `token_used` and an unknown one `not_found`.
 */
export async function revokeToken(sql: Sql, id: string, context: ActorContext): Promise<void> {
  await sql.begin(async (tx) => {
    // One statement decides, so a redeem that commits concurrently either wins or sees the revocation.
    const [row] = await tx<{ usedAt: Date | null; changed: boolean }[]>`
      with target as (select id, used_at, revoked_at from federation_enrollment_tokens where id = ${id} for update),
      changed as (
        update federation_enrollment_tokens t set revoked_at = now(), claim_id = null, claim_expires_at = null
        from target where t.id = target.id and target.used_at is null and target.revoked_at is null
        returning t.id
      )
      select target.used_at, exists (select 1 from changed) as changed from target
    `;
    if (!row) throw new ProblemError("not_found", { detail: `no enrollment token with id ${id}` });
    if (row.usedAt) {
      throw new ProblemError("token_used", { detail: `enrollment token ${id} was already used` });
    }
    if (row.changed) {
      await writeAudit(tx, {
        ...context,
        verb: "token.revoke",
        resource: "enrollment_token",
        resourceId: id,
        statusCode: 204,
        outcome: "success",
      });
    }
  });
}
