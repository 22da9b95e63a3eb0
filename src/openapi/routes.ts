import type { ZodObject } from "zod";
import type { ProblemCode } from "../http/problem.ts";
import { crlQuery } from "../http/routes/crl.ts";
import { revokeGrantBody } from "../http/routes/grants.ts";
import {
  auditQuery,
  createGrantBody,
  createPeerBody,
  createTokenBody,
  idParam,
  listTokensQuery,
  redeemBody,
  redeemParam,
} from "../http/schemas.ts";
import type { ResponseSchemaName } from "./responses.ts";

/** Route authentication: the admin JWT, METRICS_TOKEN when it is set, or none. */
export type RouteAuth = "admin" | "metrics" | "none";

export interface RouteResponse {
  description: string;
  /** A schema from RESPONSE_SCHEMAS, sent as application/json; absent for other bodies. */
  schema?: ResponseSchemaName;
  /** Media types of a body that is not JSON. */
  mediaTypes?: string[];
}

/** One route of the API, as the OpenAPI document describes it. */
export interface ApiRoute {
  method: "get" | "post" | "delete";
  /** The Hono pattern, as app.routes lists it. */
  path: string;
  operationId: string;
  summary: string;
  tag: "enrollment" | "peers" | "grants" | "tokens" | "audit" | "operations";
  auth: RouteAuth;
  params?: ZodObject;
  query?: ZodObject;
  body?: ZodObject;
  /** True when the route reads an absent body as `{}`. */
  bodyOptional?: boolean;
  /** Responses that are not problems, by status. */
  responses: Record<number, RouteResponse>;
  /** Problem codes the route can return. Each code's status comes from PROBLEMS. */
  problems: ProblemCode[];
}

/** Problems that every admin route can return, from authentication and the database. */
const ADMIN_PROBLEMS: ProblemCode[] = [
  "unauthorized",
  "forbidden",
  "auth_unavailable",
  "database_unavailable",
];

/** Problems of an admin route that reads a JSON body. */
const BODY_PROBLEMS: ProblemCode[] = [
  "validation_failed",
  "payload_too_large",
  "unsupported_media_type",
];

/** Every route the app serves. test/openapi.test.ts checks this table against app.routes. */
export const API_ROUTES: ApiRoute[] = [
  {
    method: "post",
    path: "/api/federation/enrollment/:token",
    operationId: "redeemToken",
    summary: "Trade an enrollment token and a CSR for a client certificate",
    tag: "enrollment",
    auth: "none",
    params: redeemParam,
    body: redeemBody,
    responses: {
      201: { description: "The certificate was issued.", schema: "Enrollment" },
      200: {
        description:
          "The same certificate again: the token was redeemed within the replay window with a CSR for the same key.",
        schema: "Enrollment",
      },
    },
    problems: [
      ...BODY_PROBLEMS,
      "invalid_csr",
      "token_not_found",
      "token_gone",
      "rate_limited",
      "ca_error",
      "ca_rejected",
      "ca_unavailable",
      "database_unavailable",
      "ca_timeout",
    ],
  },
  {
    method: "post",
    path: "/api/federation/peers",
    operationId: "createPeer",
    summary: "Register a peer",
    tag: "peers",
    auth: "admin",
    body: createPeerBody,
    responses: { 201: { description: "The peer.", schema: "Peer" } },
    problems: [...ADMIN_PROBLEMS, ...BODY_PROBLEMS, "conflict"],
  },
  {
    method: "get",
    path: "/api/federation/peers/:id",
    operationId: "getPeer",
    summary: "Read a peer",
    tag: "peers",
    auth: "admin",
    params: idParam,
    responses: { 200: { description: "The peer.", schema: "Peer" } },
    problems: [...ADMIN_PROBLEMS, "validation_failed", "not_found"],
  },
  {
    method: "post",
    path: "/api/federation/grants",
    operationId: "createGrant",
    summary: "Create a pending grant for a peer",
    tag: "grants",
    auth: "admin",
    body: createGrantBody,
    responses: { 201: { description: "The pending grant.", schema: "Grant" } },
    problems: [...ADMIN_PROBLEMS, ...BODY_PROBLEMS, "not_found"],
  },
  {
    method: "get",
    path: "/api/federation/grants/:id",
    operationId: "getGrant",
    summary: "Read a grant",
    tag: "grants",
    auth: "admin",
    params: idParam,
    responses: { 200: { description: "The grant.", schema: "Grant" } },
    problems: [...ADMIN_PROBLEMS, "validation_failed", "not_found"],
  },
  {
    method: "post",
    path: "/api/federation/grants/:id/revoke",
    operationId: "revokeGrant",
    summary: "Revoke a grant, its unused tokens and its certificate",
    tag: "grants",
    auth: "admin",
    params: idParam,
    body: revokeGrantBody,
    bodyOptional: true,
    responses: {
      200: {
        description: "The revoked grant; revoking a revoked grant returns it unchanged.",
        schema: "Grant",
      },
    },
    problems: [...ADMIN_PROBLEMS, ...BODY_PROBLEMS, "not_found"],
  },
  {
    method: "post",
    path: "/api/federation/enrollment/tokens",
    operationId: "createToken",
    summary: "Create a single-use enrollment token for a pending grant",
    tag: "tokens",
    auth: "admin",
    body: createTokenBody,
    responses: { 201: { description: "The token, shown only here.", schema: "CreatedToken" } },
    problems: [...ADMIN_PROBLEMS, ...BODY_PROBLEMS, "not_found", "grant_not_pending"],
  },
  {
    method: "get",
    path: "/api/federation/enrollment/tokens",
    operationId: "listTokens",
    summary: "List a grant's tokens, newest first",
    tag: "tokens",
    auth: "admin",
    query: listTokensQuery,
    responses: { 200: { description: "The tokens, without their secrets.", schema: "TokenList" } },
    problems: [...ADMIN_PROBLEMS, "validation_failed"],
  },
  {
    method: "delete",
    path: "/api/federation/enrollment/tokens/:id",
    operationId: "revokeToken",
    summary: "Revoke an unused token",
    tag: "tokens",
    auth: "admin",
    params: idParam,
    responses: { 204: { description: "Revoked, or it already was." } },
    problems: [...ADMIN_PROBLEMS, "validation_failed", "not_found", "token_used"],
  },
  {
    method: "get",
    path: "/api/federation/audit",
    operationId: "listAudit",
    summary: "List audit rows, newest first",
    tag: "audit",
    auth: "admin",
    query: auditQuery,
    responses: { 200: { description: "A page of audit rows.", schema: "AuditPage" } },
    problems: [...ADMIN_PROBLEMS, "validation_failed"],
  },
  {
    method: "get",
    path: "/api/federation/crl",
    operationId: "getCrl",
    summary: "The built-in CA's certificate revocation list",
    tag: "enrollment",
    auth: "none",
    query: crlQuery,
    responses: {
      200: {
        description: "The CRL: DER by default, PEM with format=pem.",
        mediaTypes: ["application/pkix-crl", "application/x-pem-file"],
      },
    },
    problems: ["validation_failed", "not_found", "database_unavailable"],
  },
  {
    method: "get",
    path: "/api/federation/ca/roots",
    operationId: "getCaRoots",
    summary: "The CA's root certificates, for a peer to pin by fingerprint",
    tag: "enrollment",
    auth: "none",
    responses: {
      200: { description: "The roots as one PEM bundle.", mediaTypes: ["application/x-pem-file"] },
    },
    problems: [],
  },
  {
    method: "get",
    path: "/healthz",
    operationId: "getHealth",
    summary: "Liveness: the process is up",
    tag: "operations",
    auth: "none",
    responses: { 200: { description: "The process is up.", schema: "Health" } },
    problems: [],
  },
  {
    method: "get",
    path: "/readyz",
    operationId: "getReadiness",
    summary: "Readiness: database, migrations and CA",
    tag: "operations",
    auth: "none",
    responses: {
      200: { description: "Ready to serve.", schema: "Readiness" },
      503: { description: "Not ready; `failing` names each part.", schema: "Readiness" },
    },
    problems: [],
  },
  {
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    summary: "Prometheus metrics",
    tag: "operations",
    auth: "metrics",
    responses: {
      200: { description: "The Prometheus text format 0.0.4.", mediaTypes: ["text/plain"] },
    },
    problems: ["unauthorized"],
  },
  {
    method: "get",
    path: "/openapi.json",
    operationId: "getOpenApi",
    summary: "This OpenAPI document",
    tag: "operations",
    auth: "none",
    responses: { 200: { description: "OpenAPI 3.1.", mediaTypes: ["application/json"] } },
    problems: [],
  },
  {
    method: "get",
    path: "/docs",
    operationId: "getDocs",
    summary: "This API reference as a web page",
    tag: "operations",
    auth: "none",
    responses: { 200: { description: "An HTML page.", mediaTypes: ["text/html"] } },
    problems: [],
  },
];
