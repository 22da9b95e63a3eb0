import { z } from "zod";

/** A DNS-style name, usable as a certificate common name: lowercase labels joined by dots. */
const HOSTNAME_PATTERN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const SCOPE_PATTERN = /^[A-Za-z0-9:._/-]{1,128}$/;

/** Tells whether `value` has no C0 control character or DEL; PostgreSQL text cannot hold NUL. */
function hasNoControlCharacters(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return false;
  }
  return true;
}

/** Example ids for the OpenAPI document's request examples. */
const EXAMPLE_PEER_ID = "0f8e2c1a-6b7d-4e3f-9a2b-5c4d3e2f1a0b";
const EXAMPLE_GRANT_ID = "3b9d6e2f-1c4a-4f8b-a7d5-2e6f9c0b1a3d";

export const idParam = z.object({ id: z.uuid().meta({ example: EXAMPLE_GRANT_ID }) });

export const createPeerBody = z.object({
  name: z
    .string()
    .regex(
      HOSTNAME_PATTERN,
      "must be a lowercase DNS label or hostname, such as peer-a.example.org",
    )
    .meta({ example: "peer-a.example.org" }),
  endpoint: z
    .url({ protocol: /^https?$/, error: "must be an http or https URL" })
    .max(2048)
    .refine(hasNoControlCharacters, "must not contain control characters")
    .optional()
    .meta({ example: "https://peer-a.example.org/api" }),
});

export const createGrantBody = z.object({
  peerId: z.uuid().meta({ example: EXAMPLE_PEER_ID }),
  scopes: z
    .array(z.string().regex(SCOPE_PATTERN, "must be 1-128 characters of A-Z a-z 0-9 : . _ / -"))
    .max(64)
    .refine((scopes) => new Set(scopes).size === scopes.length, "must not repeat a scope")
    .meta({ example: ["orders:read", "orders:write"] }),
});

export const createTokenBody = z.object({
  grantId: z.uuid().meta({ example: EXAMPLE_GRANT_ID }),
  ttlSeconds: z.number().int().positive().optional().meta({ example: 900 }),
});

export const listTokensQuery = z.object({
  grantId: z.uuid().meta({ example: EXAMPLE_GRANT_ID }),
});

export const auditQuery = z.object({
  resourceId: z
    .string()
    .min(1)
    .max(200)
    .refine(hasNoControlCharacters, "must not contain control characters")
    .optional()
    .meta({ example: EXAMPLE_GRANT_ID }),
  limit: z.coerce.number().int().min(1).max(200).default(50).meta({ example: 20 }),
  cursor: z.coerce.number().int().positive().optional().meta({ example: 1042 }),
});

export const redeemBody = z.object({
  csr: z
    .string()
    .min(1)
    .max(64 * 1024)
    .meta({ example: "-----BEGIN CERTIFICATE REQUEST-----\n..." }),
});

export const redeemParam = z.object({
  // Shows the format only: its checksum is not valid, and the redeem route looks up any string.
  token: z
    .string()
    .max(512)
    .meta({ example: "fedtok_ExampleTokenForTheApiDocumentation000000000000000" }),
});
