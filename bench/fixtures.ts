// Test data written straight into the service's database before a run, so that preparing
// thousands of single-use tokens costs no time on the clock. Each token needs its own pending
// grant, because a redeem activates the grant and a grant is redeemed once.
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { generateToken, hashToken } from "../src/enrollment/token-format.ts";

/** Rows per insert statement; keeps each statement's parameter arrays moderate. */
const BATCH = 2000;
const TOKEN_TTL = "2 hours";

let peerCounter = 0;

/** Inserts `count` peers with one pending grant each and returns the grants' ids. */
export async function createPendingGrants(databaseUrl: string, count: number): Promise<string[]> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const grantIds: string[] = [];
  try {
    for (let start = 0; start < count; start += BATCH) {
      const size = Math.min(BATCH, count - start);
      const peerIds = Array.from({ length: size }, () => randomUUID());
      const names = peerIds.map(() => `bench-peer-${process.pid}-${++peerCounter}`);
      const ids = peerIds.map(() => randomUUID());
      await sql`
        insert into federation_peers (id, name)
        select * from unnest(${peerIds}::uuid[], ${names}::text[])
      `;
      await sql`
        insert into federation_grants (id, peer_id, scopes)
        select id, peer_id, '{bench:read}'::text[]
        from unnest(${ids}::uuid[], ${peerIds}::uuid[]) as t(id, peer_id)
      `;
      grantIds.push(...ids);
    }
  } finally {
    await sql.end();
  }
  return grantIds;
}

/** Creates `count` redeemable tokens, each for its own pending grant, and returns the secrets. */
export async function createRedeemTokens(databaseUrl: string, count: number): Promise<string[]> {
  const grantIds = await createPendingGrants(databaseUrl, count);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const tokens = grantIds.map(() => generateToken());
  try {
    for (let start = 0; start < count; start += BATCH) {
      const hashes = tokens.slice(start, start + BATCH).map(hashToken);
      const grants = grantIds.slice(start, start + BATCH);
      await sql`
        insert into federation_enrollment_tokens (token_hash, grant_id, created_by, expires_at)
        select hash, grant_id, 'bench', now() + ${TOKEN_TTL}::interval
        from unnest(${hashes}::text[], ${grants}::uuid[])
          as t(hash, grant_id)
      `;
    }
  } finally {
    await sql.end();
  }
  return tokens;
}
