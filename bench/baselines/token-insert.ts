// Baseline for token creation: the statements of createToken (src/repository/tokens.ts) in one
// transaction with raw postgres.js, at the same concurrency and pool size as the service. No
// HTTP, authentication or validation is involved.
import { createPool } from "../../src/db/connect.ts";
import { generateToken, hashToken } from "../../src/enrollment/token-format.ts";
import { readJob } from "../child-job.ts";
import { runLoad } from "../load.ts";

export interface TokenInsertJob {
  databaseUrl: string;
  poolMax: number;
  /** Pending grants; worker requests take them in turn. */
  grantIds: string[];
  ttlSeconds: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  maxRequests: number;
}

const job = readJob<TokenInsertJob>();
const sql = createPool(job.databaseUrl, job.poolMax);

async function createToken(grantId: string): Promise<void> {
  const token = generateToken();
  await sql.begin(async (tx) => {
    const [grant] = await tx<{ status: string }[]>`
      select status from federation_grants where id = ${grantId} for share
    `;
    if (grant?.status !== "pending") throw new Error(`grant ${grantId} is not pending`);
    const [row] = await tx<{ id: string; expiresAt: Date }[]>`
      insert into federation_enrollment_tokens (token_hash, grant_id, created_by, expires_at)
      values (
        ${hashToken(token)}, ${grantId}, ${"bench"},
        now() + make_interval(secs => ${job.ttlSeconds})
      )
      returning id, expires_at
    `;
    if (!row) throw new Error("insert returned no row");
    const detail = { grantId, expiresAt: row.expiresAt.toISOString() };
    await tx`
      insert into federation_audit_log
        (actor, verb, resource, resource_id, status_code, outcome, request_id, detail)
      values (
        ${"bench"}, ${"token.create"}, ${"enrollment_token"}, ${row.id}, ${201},
        ${"success"}, ${null}, ${tx.json(detail)}
      )
    `;
  });
}

const load = (name: string, durationMs: number) =>
  runLoad({
    name,
    concurrency: job.concurrency,
    durationMs,
    maxRequests: job.maxRequests,
    expectedStatus: 201,
    send: async (index) => {
      await createToken(job.grantIds[index % job.grantIds.length] as string);
      return 201;
    },
  });

await load("warmup", job.warmupMs);
const result = await load("token-sql", job.durationMs);
await sql.end({ timeout: 1 });
console.log(JSON.stringify(result));
