import { sql } from "drizzle-orm";
import {
  bigserial,
  check,
  index,
  integer,
  jsonb,
  pgSequence,
  pgTable,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

export const peers = pgTable("federation_peers", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull().unique(),
  endpoint: text("endpoint"),
  certSerial: text("cert_serial"),
  certNotAfter: timestamp("cert_not_after", { withTimezone: true }),
  // Set when the grant that issued cert_serial is revoked; cleared when a new certificate is issued.
  certRevokedAt: timestamp("cert_revoked_at", { withTimezone: true }),
  certRevocationReason: text("cert_revocation_reason"),
  createdAt: createdAt(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export const grants = pgTable(
  "federation_grants",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    peerId: uuid("peer_id")
      .notNull()
      .references(() => peers.id),
    scopes: text("scopes").array().notNull().default(sql`'{}'::text[]`),
    status: text("status").notNull().default("pending"),
    createdAt: createdAt(),
    activatedAt: timestamp("activated_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    revokeReason: text("revoke_reason"),
    // Revoking the grant's certificate at the CA happens after the grant is revoked here, and is
    // retried until it succeeds: pending -> done. Null when there is no certificate to revoke.
    certRevocation: text("cert_revocation"),
    certRevocationAttempts: integer("cert_revocation_attempts").notNull().default(0),
    certRevokedAt: timestamp("cert_revoked_at", { withTimezone: true }),
    // While pending: when the next attempt may start. An attempt moves it forward first, as a
    // lease, so that instances never work on the same revocation at once.
    certRevocationNextAt: timestamp("cert_revocation_next_at", { withTimezone: true }),
    // Problem code of the last failed attempt, such as ca_unavailable; never the CA's own message.
    certRevocationError: text("cert_revocation_error"),
  },
  (table) => [
    index("federation_grants_peer_id_idx").on(table.peerId),
    index("federation_grants_cert_revocation_pending_idx")
      .on(table.certRevocationNextAt)
      .where(sql`${table.certRevocation} = 'pending'`),
    check(
      "federation_grants_status_check",
      sql`${table.status} in ('pending', 'active', 'revoked')`,
    ),
    check(
      "federation_grants_cert_revocation_check",
      sql`${table.certRevocation} is null or ${table.certRevocation} in ('pending', 'done')`,
    ),
  ],
);

export const enrollmentTokens = pgTable(
  "federation_enrollment_tokens",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    // SHA-256 of the token. The token itself is shown once, when it is created, and never stored.
    tokenHash: text("token_hash").notNull().unique(),
    grantId: uuid("grant_id")
      .notNull()
      .references(() => grants.id),
    createdBy: text("created_by").notNull(),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    // A redeem claims the token before it calls the CA. The claim is a lease: once
    // claim_expires_at has passed, another redeem may take the token over.
    claimId: uuid("claim_id"),
    claimExpiresAt: timestamp("claim_expires_at", { withTimezone: true }),
    usedAt: timestamp("used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    failedAttempts: integer("failed_attempts").notNull().default(0),
    certSerial: text("cert_serial"),
    // Hex SHA-256 of the redeeming key's SubjectPublicKeyInfo, so that a peer whose response was
    // lost can fetch the same certificate again with the same key.
    keyFingerprint: text("key_fingerprint"),
    certificate: text("certificate"),
    certificateChain: text("certificate_chain"),
  },
  (table) => [index("federation_enrollment_tokens_grant_id_idx").on(table.grantId)],
);

export const auditLog = pgTable(
  "federation_audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
    actor: text("actor").notNull(),
    verb: text("verb").notNull(),
    resource: text("resource").notNull(),
    resourceId: text("resource_id"),
    statusCode: integer("status_code").notNull(),
    outcome: text("outcome").notNull(),
    requestId: text("request_id"),
    detail: jsonb("detail").notNull().default(sql`'{}'::jsonb`),
  },
  (table) => [
    index("federation_audit_log_resource_id_idx").on(table.resourceId, table.id),
    check(
      "federation_audit_log_outcome_check",
      sql`${table.outcome} in ('success', 'failure', 'denied', 'possible_token_leak')`,
    ),
  ],
);

// Revocations made by the built-in CA, the source of its CRL.
export const caRevocations = pgTable("federation_ca_revocations", {
  serial: text("serial").primaryKey(),
  revokedAt: timestamp("revoked_at", { withTimezone: true }).notNull().defaultNow(),
  reasonCode: integer("reason_code").notNull().default(0),
});

// Numbers the built-in CA's CRLs: each newly generated CRL takes the next value (RFC 5280 5.2.3).
export const crlNumber = pgSequence("federation_crl_number_seq", { startWith: 1 });

// Fixed-window counters for the redeem rate limit when it must hold across instances.
export const rateLimits = pgTable("federation_rate_limits", {
  key: text("key").primaryKey(),
  windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
  hits: integer("hits").notNull(),
});
