import type { Db } from "../db/connect.ts";

export type AuditOutcome = "success" | "failure" | "denied" | "possible_token_leak";

/** One audit row. `detail` must never hold a token, a token hash, a key or a JWT. */
export interface AuditEntry {
  actor: string;
  verb: string;
  resource: "peer" | "grant" | "enrollment_token" | "certificate";
  resourceId: string | null;
  statusCode: number;
  outcome: AuditOutcome;
  requestId: string | null;
  detail?: Record<string, unknown>;
}

/** Appends an audit row. Pass a transaction to make the row part of the change it records. */
export async function writeAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db`
    insert into federation_audit_log
      (actor, verb, resource, resource_id, status_code, outcome, request_id, detail)
    values (
      ${entry.actor}, ${entry.verb}, ${entry.resource}, ${entry.resourceId}, ${entry.statusCode},
      ${entry.outcome}, ${entry.requestId}, ${db.json((entry.detail ?? {}) as never)}
    )
  `;
}

export interface AuditRow {
  id: number;
  occurredAt: Date;
  actor: string;
  verb: string;
  resource: string;
  resourceId: string | null;
  statusCode: number;
  outcome: AuditOutcome;
  requestId: string | null;
  detail: Record<string, unknown>;
}

/** Lists audit rows newest first. `cursor` is the id of the last row of the previous page. */
export async function listAudit(
  db: Db,
  query: { resourceId?: string; limit: number; cursor?: number },
): Promise<{ items: AuditRow[]; nextCursor: number | null }> {
  const rows = await db<AuditRow[]>`
    select id::int as id, occurred_at, actor, verb, resource, resource_id, status_code, outcome,
      request_id, detail
    from federation_audit_log
    where true
      ${query.resourceId ? db`and resource_id = ${query.resourceId}` : db``}
      ${query.cursor ? db`and id < ${query.cursor}` : db``}
    order by id desc
    limit ${query.limit + 1}
  `;
  const items = rows.slice(0, query.limit);
  const nextCursor = rows.length > query.limit ? (items.at(-1)?.id ?? null) : null;
  return { items, nextCursor };
}
