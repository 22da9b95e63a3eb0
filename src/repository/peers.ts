import type { Db, Sql } from "../db/connect.ts";
import { ProblemError } from "../http/problem.ts";
import { writeAudit } from "./audit.ts";

export interface Peer {
  id: string;
  name: string;
  endpoint: string | null;
  certSerial: string | null;
  certNotAfter: Date | null;
  /** When the grant that issued cert_serial was revoked; null while that certificate stands. */
  certRevokedAt: Date | null;
  certRevocationReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ActorContext {
  actor: string;
  requestId: string | null;
}

const PEER_COLUMNS = (db: Db) =>
  db`id, name, endpoint, cert_serial, cert_not_after, cert_revoked_at, cert_revocation_reason,
    created_at, updated_at`;

/** Registers a peer. Throws `conflict` when the name is taken. */
export async function createPeer(
  sql: Sql,
  input: { name: string; endpoint?: string },
  context: ActorContext,
): Promise<Peer> {
  return sql.begin(async (tx) => {
    const [peer] = await tx<Peer[]>`
      insert into federation_peers (name, endpoint)
      values (${input.name}, ${input.endpoint ?? null})
      on conflict (name) do nothing
      returning ${PEER_COLUMNS(tx)}
    `;
    if (!peer) {
      throw new ProblemError("conflict", { detail: `a peer named "${input.name}" already exists` });
    }
    await writeAudit(tx, {
      ...context,
      verb: "peer.create",
      resource: "peer",
      resourceId: peer.id,
      statusCode: 201,
      outcome: "success",
      detail: { name: peer.name },
    });
    return peer;
  });
}

/** Reads a peer. Throws `not_found`. */
export async function getPeer(db: Db, id: string): Promise<Peer> {
  const [peer] = await db<Peer[]>`
    select ${PEER_COLUMNS(db)} from federation_peers where id = ${id}
  `;
  if (!peer) throw new ProblemError("not_found", { detail: `no peer with id ${id}` });
  return peer;
}
