import { z } from "zod";

/** A DNS-style name, usable as a certificate common name: lowercase labels joined by dots. */
const HOSTNAME_PATTERN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const SCOPE_PATTERN = /^[A-Za-z0-9:._/-]{1,128}$/;

export const idParam = z.object({ id: z.uuid() });

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
    .optional()
    .meta({ example: "https://peer-a.example.org/api" }),
});

export const createGrantBody = z.object({
  peerId: z.uuid(),
  scopes: z
    .array(z.string().regex(SCOPE_PATTERN, "must be 1-128 characters of A-Z a-z 0-9 : . _ / -"))
    .max(64)
    .refine((scopes) => new Set(scopes).size === scopes.length, "must not repeat a scope")
    .meta({ example: ["orders:read", "orders:write"] }),
});

export const createTokenBody = z.object({
  grantId: z.uuid(),
  ttlSeconds: z.number().int().positive().optional().meta({ example: 900 }),
});

export const listTokensQuery = z.object({ grantId: z.uuid() });

export const auditQuery = z.object({
  resourceId: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.coerce.number().int().positive().optional(),
});

export const redeemBody = z.object({
  csr: z
    .string()
    .min(1)
    .max(64 * 1024)
    .meta({ example: "-----BEGIN CERTIFICATE REQUEST-----\n..." }),
});

export const redeemParam = z.object({ token: z.string().max(512) });
