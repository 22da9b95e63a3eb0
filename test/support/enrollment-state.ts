// Creates enrollments straight in the database, and checks the redeem invariants over every token
// in it, for suites that drive the service from outside or break it on purpose.
import type { Db, Sql } from "../../src/db/connect.ts";
import { createGrant } from "../../src/repository/grants.ts";
import { createPeer } from "../../src/repository/peers.ts";
import { createToken } from "../../src/repository/tokens.ts";
import { uniquePeerName } from "./harness.ts";

export interface SeededEnrollment {
  peerId: string;
  peerName: string;
  grantId: string;
  tokenId: string;
  token: string;
}

const TEST_ACTOR = { actor: "test-admin", requestId: null };

/** Creates a peer, a pending grant and one token, as the admin API does. */
export async function seedEnrollment(sql: Sql, ttlSeconds = 900): Promise<SeededEnrollment> {
  const peer = await createPeer(sql, { name: uniquePeerName() }, TEST_ACTOR);
  const grant = await createGrant(sql, { peerId: peer.id, scopes: ["orders:read"] }, TEST_ACTOR);
  const created = await createToken(sql, { grantId: grant.id, ttlSeconds }, TEST_ACTOR);
  return {
    peerId: peer.id,
    peerName: peer.name,
    grantId: grant.id,
    tokenId: created.id,
    token: created.token,
  };
}

/** A token with its grant and peer, and the audit rows that count for the invariants. */
export interface TokenRecord {
  tokenId: string;
  grantId: string;
  grantStatus: string;
  peerId: string;
  peerSerial: string | null;
  used: boolean;
  certSerial: string | null;
  hasCertificate: boolean;
  claimId: string | null;
  failedAttempts: number;
  /** Rows with verb enrollment.redeem and outcome success. */
  successAudits: number;
  /** Rows with verb enrollment.redeem and outcome failure. */
  failureAudits: number;
}

/** Reads every token, or only `tokenIds`. */
export async function tokenRecords(db: Db, tokenIds?: string[]): Promise<TokenRecord[]> {
  return db<TokenRecord[]>`
    select t.id as token_id, t.grant_id, g.status as grant_status, g.peer_id,
      p.cert_serial as peer_serial, t.used_at is not null as used, t.cert_serial,
      t.certificate is not null as has_certificate, t.claim_id,
      t.failed_attempts,
      (select count(*)::int from federation_audit_log a
        where a.resource_id = t.id::text and a.verb = 'enrollment.redeem' and a.outcome = 'success')
        as success_audits,
      (select count(*)::int from federation_audit_log a
        where a.resource_id = t.id::text and a.verb = 'enrollment.redeem' and a.outcome = 'failure')
        as failure_audits
    from federation_enrollment_tokens t
    join federation_grants g on g.id = t.grant_id
    join federation_peers p on p.id = g.peer_id
    ${tokenIds ? db`where t.id = any(${tokenIds}::uuid[])` : db``}
    order by t.created_at, t.id
  `;
}

/** Reads one token; throws when it does not exist. */
export async function tokenRecord(db: Db, tokenId: string): Promise<TokenRecord> {
  const [record] = await tokenRecords(db, [tokenId]);
  if (!record) throw new Error(`no enrollment token with id ${tokenId}`);
  return record;
}

/**
 * Lists every broken invariant in the database, one line each, so that a test can expect an
 * empty list and still show what went wrong. A grant is active exactly when one of its tokens
 * is used; a used token contains its certificate, no claim and one success audit row; the peer of
 * an active grant carries that token's serial.
 */
export async function invariantViolations(db: Db): Promise<string[]> {
  const records = await tokenRecords(db);
  const violations: string[] = [];
  const usedByGrant = new Map<string, TokenRecord[]>();
  for (const record of records) {
    const name = `token ${record.tokenId}`;
    const used = usedByGrant.get(record.grantId) ?? [];
    if (record.used) used.push(record);
    usedByGrant.set(record.grantId, used);
    if (record.used) {
      if (!record.certSerial || !record.hasCertificate)
        violations.push(`${name} is used without a certificate`);
      if (record.claimId) violations.push(`${name} is used and still claimed`);
      if (record.grantStatus !== "active")
        violations.push(`${name} is used but its grant is ${record.grantStatus}`);
      if (record.successAudits !== 1) {
        violations.push(`${name} is used with ${record.successAudits} success audit rows`);
      }
    } else if (record.successAudits !== 0) {
      violations.push(`${name} is unused with ${record.successAudits} success audit rows`);
    }
  }
  for (const record of records) {
    const used = usedByGrant.get(record.grantId) ?? [];
    if (record.grantStatus === "active" && used.length !== 1) {
      violations.push(`grant ${record.grantId} is active with ${used.length} used tokens`);
    }
    if (record.grantStatus === "pending" && used.length > 0) {
      violations.push(`grant ${record.grantId} is pending with a used token`);
    }
    if (record.grantStatus === "active" && used[0] && record.peerSerial !== used[0].certSerial) {
      violations.push(
        `peer ${record.peerId} has serial ${record.peerSerial}, its used token ${used[0].certSerial}`,
      );
    }
  }
  return [...new Set(violations)];
}
