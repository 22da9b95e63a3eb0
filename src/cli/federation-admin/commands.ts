import type { Command } from "./args.ts";
import type { AdminClient } from "./client.ts";
import { AdminError } from "./errors.ts";
import { cell, fields, shellWord, table } from "./format.ts";

/** Command output: `json` is printed with --json, `text` otherwise. */
export interface CommandOutput {
  json: unknown;
  text: string;
}

interface Peer {
  id: string;
  name: string;
}

interface Grant {
  id: string;
  peerId: string;
  scopes: string[];
  status: string;
  revokedAt: string | null;
  revokeReason: string | null;
  certRevocation: string | null;
}

interface CreatedToken {
  id: string;
  token: string;
  expiresAt: string;
  redeemUrl: string;
  caFingerprint: string;
}

interface TokenSummary {
  id: string;
  status: string;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
  failedAttempts: number;
  certSerial: string | null;
}

interface AuditRow {
  id: number;
  occurredAt: string;
  actor: string;
  verb: string;
  resource: string;
  resourceId: string | null;
  statusCode: number;
  outcome: string;
  requestId: string | null;
}

const REDEEM_PATH = "/api/federation/enrollment/";

/**
 * Derives the base URL that peers use from the token's redeemUrl, which the service builds from
 * its PUBLIC_URL. The admin's own URL may be an internal one that peers cannot reach.
 */
function peerBaseUrl(created: CreatedToken, fallback: string): string {
  const index = created.redeemUrl.lastIndexOf(REDEEM_PATH);
  return index > 0 ? created.redeemUrl.slice(0, index) : fallback;
}

/** Prefixes a failure after the peer exists with what was already created. */
async function afterPeer<T>(peer: Peer, step: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof AdminError)) throw error;
    const created = `peer ${peer.name} (${peer.id}) was created`;
    throw new AdminError(error.exitCode, `${created}, but ${step} failed: ${error.message}`, {
      cause: error,
    });
  }
}

async function enrollPeer(
  client: AdminClient,
  command: Extract<Command, { name: "enroll-peer" }>,
  baseUrl: string,
): Promise<CommandOutput> {
  const peer = await client.send<Peer>("POST", "/api/federation/peers", {
    name: command.peerName,
    ...(command.endpoint ? { endpoint: command.endpoint } : {}),
  });
  const grant = await afterPeer(peer, "creating its grant", () =>
    client.send<Grant>("POST", "/api/federation/grants", {
      peerId: peer.id,
      scopes: command.scopes,
    }),
  );
  const token = await afterPeer(peer, `creating a token for grant ${grant.id}`, () =>
    client.send<CreatedToken>("POST", "/api/federation/enrollment/tokens", {
      grantId: grant.id,
      ...(command.ttl ? { ttlSeconds: command.ttl } : {}),
    }),
  );
  // npx finds federation-enroll in a checkout or an install of this package, where the bare name
  // is not on PATH.
  const enrollCommand = [
    "npx",
    "federation-enroll",
    "--url",
    shellWord(peerBaseUrl(token, baseUrl)),
    "--token",
    token.token,
    "--fingerprint",
    token.caFingerprint,
    "--out",
    shellWord(`./${peer.name}`),
  ].join(" ");
  const text = [
    fields([
      ["peer", `${peer.name} (${peer.id})`],
      ["grant", `${grant.id} (${grant.status}; scopes ${grant.scopes.join(", ") || "none"})`],
      ["token", token.token],
      ["token id", token.id],
      ["expires", token.expiresAt],
      ["fingerprint", token.caFingerprint],
    ]),
    "",
    "Give the peer the token and the fingerprint over a trusted channel. The peer runs:",
    "",
    `  ${enrollCommand}`,
  ].join("\n");
  return { json: { peer, grant, token, command: enrollCommand }, text };
}

async function listTokens(client: AdminClient, grantId: string): Promise<CommandOutput> {
  const query = new URLSearchParams({ grantId });
  const body = await client.send<{ items: TokenSummary[] }>(
    "GET",
    `/api/federation/enrollment/tokens?${query}`,
  );
  const rows = body.items.map((token) => [
    token.id,
    token.status,
    token.createdAt,
    token.expiresAt,
    cell(token.usedAt),
    String(token.failedAttempts),
    cell(token.certSerial),
  ]);
  const headers = ["ID", "STATUS", "CREATED", "EXPIRES", "USED", "FAILED", "SERIAL"];
  const text = rows.length > 0 ? table(headers, rows) : `grant ${grantId} has no tokens`;
  return { json: body, text };
}

async function revokeToken(client: AdminClient, tokenId: string): Promise<CommandOutput> {
  await client.send("DELETE", `/api/federation/enrollment/tokens/${encodeURIComponent(tokenId)}`);
  return { json: { id: tokenId, revoked: true }, text: `token ${tokenId} is revoked` };
}

async function revokeGrant(
  client: AdminClient,
  grantId: string,
  reason: string | undefined,
): Promise<CommandOutput> {
  const grant = await client.send<Grant>(
    "POST",
    `/api/federation/grants/${encodeURIComponent(grantId)}/revoke`,
    reason ? { reason } : {},
  );
  const text = fields([
    ["grant", grant.id],
    ["status", grant.status],
    ["revoked", cell(grant.revokedAt)],
    ["reason", cell(grant.revokeReason)],
    ["certificate", cell(grant.certRevocation && `revocation ${grant.certRevocation}`)],
  ]);
  return { json: grant, text };
}

async function listAudit(
  client: AdminClient,
  command: Extract<Command, { name: "audit" }>,
): Promise<CommandOutput> {
  const query = new URLSearchParams();
  if (command.resourceId) query.set("resourceId", command.resourceId);
  if (command.limit) query.set("limit", String(command.limit));
  if (command.cursor) query.set("cursor", String(command.cursor));
  const page = await client.send<{ items: AuditRow[]; nextCursor: number | null }>(
    "GET",
    `/api/federation/audit${query.size > 0 ? `?${query}` : ""}`,
  );
  const rows = page.items.map((row) => [
    String(row.id),
    row.occurredAt,
    row.actor,
    row.verb,
    `${row.resource}:${cell(row.resourceId)}`,
    String(row.statusCode),
    row.outcome,
    cell(row.requestId),
  ]);
  const headers = ["ID", "TIME", "ACTOR", "VERB", "RESOURCE", "STATUS", "OUTCOME", "REQUEST ID"];
  const lines = [rows.length > 0 ? table(headers, rows) : "no audit rows"];
  if (page.nextCursor !== null) lines.push("", `more rows: add --cursor ${page.nextCursor}`);
  return { json: page, text: lines.join("\n") };
}

/** Runs one command against the admin API. */
export function runCommand(
  client: AdminClient,
  command: Command,
  baseUrl: string,
): Promise<CommandOutput> {
  switch (command.name) {
    case "enroll-peer":
      return enrollPeer(client, command, baseUrl);
    case "tokens list":
      return listTokens(client, command.grantId);
    case "tokens revoke":
      return revokeToken(client, command.tokenId);
    case "grants revoke":
      return revokeGrant(client, command.grantId, command.reason);
    case "audit":
      return listAudit(client, command);
  }
}
