import type { Db, Sql } from "../db/connect.ts";
import { ProblemError } from "../http/problem.ts";
import { writeAudit } from "./audit.ts";
import type { ActorContext } from "./peers.ts";

export type GrantStatus = "pending" | "active" | "revoked";

export interface Grant {
  id: string;
  peerId: string;
  scopes: string[];
  status: GrantStatus;
  createdAt: Date;
  activatedAt: Date | null;
  revokedAt: Date | null;
  revokeReason: string | null;
  /** Revocation of the grant's certificate at the CA; null when it never had one. */
  certRevocation: "pending" | "done" | null;
  certRevokedAt: Date | null;
  certRevocationAttempts: number;
  /** While pending: when the next attempt is due. */
  certRevocationNextAt: Date | null;
  /** Problem code of the last failed attempt, such as ca_unavailable. */
  certRevocationError: string | null;
}

export const GRANT_COLUMNS = (db: Db) => db`
  id, peer_id, scopes, status, created_at, activated_at, revoked_at, revoke_reason,
  cert_revocation, cert_revoked_at, cert_revocation_attempts, cert_revocation_next_at,
  cert_revocation_error
`;

/** Creates a pending grant for a peer. Throws `not_found` when the peer does not exist. */
export async function createGrant(
  sql: Sql,
  input: { peerId: string; scopes: string[] },
  context: ActorContext,
): Promise<Grant> {
  return sql.begin(async (tx) => {
    const [grant] = await tx<Grant[]>`
      insert into federation_grants (peer_id, scopes)
      select id, ${input.scopes}::text[] from federation_peers where id = ${input.peerId}
      returning ${GRANT_COLUMNS(tx)}
    `;
    if (!grant) throw new ProblemError("not_found", { detail: `no peer with id ${input.peerId}` });
    await writeAudit(tx, {
      ...context,
      verb: "grant.create",
      resource: "grant",
      resourceId: grant.id,
      statusCode: 201,
      outcome: "success",
      detail: { peerId: grant.peerId, scopes: grant.scopes },
    });
    return grant;
  });
}

/** Reads a grant. Throws `not_found`. */
export async function getGrant(db: Db, id: string): Promise<Grant> {
  const [grant] = await db<Grant[]>`
    select ${GRANT_COLUMNS(db)} from federation_grants where id = ${id}
  `;
  if (!grant) throw new ProblemError("not_found", { detail: `no grant with id ${id}` });
  return grant;
}
