import { z } from "zod";
import { PROBLEMS } from "../http/problem.ts";

// Response bodies as the API sends them, for the OpenAPI document. The request schemas live in
// src/http/schemas.ts, where the routes validate with them; these are never used to validate,
// and test/openapi.test.ts checks real responses against them.

const timestamp = z.iso.datetime();
const uuid = z.uuid();

export const problemSchema = z
  .object({
    type: z.string().meta({ example: "urn:federation-enrollment:problem:token_gone" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(PROBLEMS) as [keyof typeof PROBLEMS, ...(keyof typeof PROBLEMS)[]]),
    requestId: z.string().describe("The X-Request-Id of the request, for finding its log lines."),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe("Each invalid field, on validation_failed."),
  })
  .describe("An RFC 9457 problem, sent as application/problem+json.");

export const peerSchema = z.object({
  id: uuid,
  name: z.string(),
  endpoint: z.string().nullable(),
  certSerial: z.string().nullable().describe("Serial of the peer's latest certificate, hex."),
  certNotAfter: timestamp.nullable(),
  certRevokedAt: timestamp.nullable(),
  certRevocationReason: z.string().nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
});

export const grantSchema = z.object({
  id: uuid,
  peerId: uuid,
  scopes: z.array(z.string()),
  status: z.enum(["pending", "active", "revoked"]),
  createdAt: timestamp,
  activatedAt: timestamp.nullable(),
  revokedAt: timestamp.nullable(),
  revokeReason: z.string().nullable(),
  certRevocation: z
    .enum(["pending", "done"])
    .nullable()
    .describe("Revocation of the grant's certificate at the CA; null when it has none."),
  certRevokedAt: timestamp.nullable(),
  certRevocationAttempts: z.number().int(),
  certRevocationNextAt: timestamp.nullable(),
  certRevocationError: z.string().nullable(),
});

export const createdTokenSchema = z.object({
  id: uuid,
  token: z.string().describe("The single-use secret. It is shown only in this response."),
  grantId: uuid,
  expiresAt: timestamp,
  redeemUrl: z.url().describe("Where the peer POSTs its CSR."),
  caFingerprint: z
    .string()
    .describe("Hex SHA-256 of the CA root, for the peer to pin before it sends the token."),
});

export const tokenSummarySchema = z.object({
  id: uuid,
  grantId: uuid,
  status: z.enum(["active", "used", "expired", "revoked"]),
  createdBy: z.string(),
  createdAt: timestamp,
  expiresAt: timestamp,
  usedAt: timestamp.nullable(),
  revokedAt: timestamp.nullable(),
  failedAttempts: z.number().int(),
  certSerial: z.string().nullable(),
});

export const tokenListSchema = z.object({ items: z.array(tokenSummarySchema) });

export const auditPageSchema = z.object({
  items: z.array(
    z.object({
      id: z.number().int(),
      occurredAt: timestamp,
      actor: z.string(),
      verb: z.string(),
      resource: z.string(),
      resourceId: z.string().nullable(),
      statusCode: z.number().int(),
      outcome: z.enum(["success", "failure", "denied", "possible_token_leak"]),
      requestId: z.string().nullable(),
      detail: z.record(z.string(), z.unknown()),
    }),
  ),
  nextCursor: z.number().int().nullable().describe("Pass as `cursor` for the next page."),
});

export const enrollmentSchema = z.object({
  certificate: z.string().describe("The client certificate, PEM."),
  certificateChain: z.string().describe("The certificate, then its intermediates, PEM."),
  caCertificates: z.string().describe("The root certificates, PEM."),
  serialNumber: z.string(),
  notBefore: timestamp,
  notAfter: timestamp,
  grant: z.object({ id: uuid, scopes: z.array(z.string()) }),
  peer: z.object({ id: uuid, name: z.string() }),
});

export const healthSchema = z.object({ status: z.literal("ok") });

export const readinessSchema = z.object({
  status: z.enum(["ready", "not_ready"]),
  failing: z.array(z.enum(["database", "migrations", "certificateAuthority"])),
  checks: z.record(
    z.string(),
    z.union([
      z.object({ ok: z.literal(true) }),
      z.object({ ok: z.literal(false), error: z.string() }),
    ]),
  ),
});

/** The response schemas by the name they have under components.schemas. */
export const RESPONSE_SCHEMAS = {
  Problem: problemSchema,
  Peer: peerSchema,
  Grant: grantSchema,
  CreatedToken: createdTokenSchema,
  TokenSummary: tokenSummarySchema,
  TokenList: tokenListSchema,
  AuditPage: auditPageSchema,
  Enrollment: enrollmentSchema,
  Health: healthSchema,
  Readiness: readinessSchema,
};

export type ResponseSchemaName = keyof typeof RESPONSE_SCHEMAS;
