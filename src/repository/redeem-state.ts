import type { Db } from "../db/connect.ts";
import type { ParsedCsr } from "../enrollment/csr.ts";

/** Everything a redeem needs to know about a token, read in one query. */
export interface TokenState {
  id: string;
  grantId: string;
  grantStatus: "pending" | "active" | "revoked";
  scopes: string[];
  peerId: string;
  peerName: string;
  /** Decided by the database clock. */
  expired: boolean;
  used: boolean;
  revoked: boolean;
  withinReplayWindow: boolean;
  failedAttempts: number;
  keyFingerprint: string | null;
  certSerial: string | null;
  certificate: string | null;
  certificateChain: string | null;
}

/** Reads a token with its grant and peer by the token's hash. */
export async function lookupToken(
  db: Db,
  tokenHash: string,
  replayWindowSeconds: number,
): Promise<TokenState | undefined> {
  const [row] = await db<TokenState[]>`
    select t.id, t.grant_id, g.status as grant_status, g.scopes, p.id as peer_id, p.name as peer_name,
      t.expires_at <= now() as expired,
      t.used_at is not null as used,
      t.revoked_at is not null as revoked,
      coalesce(t.used_at > now() - make_interval(secs => ${replayWindowSeconds}), false)
        as within_replay_window,
      t.failed_attempts, t.key_fingerprint, t.cert_serial, t.certificate, t.certificate_chain
    from federation_enrollment_tokens t
    join federation_grants g on g.id = t.grant_id
    join federation_peers p on p.id = g.peer_id
    where t.token_hash = ${tokenHash}
  `;
  return row;
}

export type TokenVerdict =
  | { kind: "claimable" }
  | { kind: "replay" }
  | { kind: "gone"; reason: string; leak: boolean };

/**
 * Decides what a redeem may do with a token. A used token is handed back only to the key that
 * redeemed it, within the replay window, while the grant is active: that is a peer retrying after
 * a lost response. Any other use of a used or revoked token may mean the token leaked.
 */
export function classifyToken(
  state: TokenState,
  csr: ParsedCsr | undefined,
  maxFailedAttempts: number,
): TokenVerdict {
  if (state.used) {
    const sameKey = csr !== undefined && csr.keyFingerprint === state.keyFingerprint;
    if (
      sameKey &&
      state.withinReplayWindow &&
      state.grantStatus === "active" &&
      state.certificate
    ) {
      return { kind: "replay" };
    }
    return { kind: "gone", reason: "used", leak: true };
  }
  if (state.revoked) return { kind: "gone", reason: "revoked", leak: true };
  if (state.expired) return { kind: "gone", reason: "expired", leak: false };
  if (state.grantStatus !== "pending") {
    return {
      kind: "gone",
      reason: `grant_${state.grantStatus}`,
      leak: state.grantStatus === "revoked",
    };
  }
  if (state.failedAttempts >= maxFailedAttempts) {
    return { kind: "gone", reason: "too_many_failed_attempts", leak: false };
  }
  return { kind: "claimable" };
}
