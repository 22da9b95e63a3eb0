import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ZodObject } from "zod";
import { CaError } from "../src/ca/authority.ts";
import { PROBLEMS } from "../src/http/problem.ts";
import { ServiceMetrics } from "../src/metrics/metrics.ts";
import { buildOpenApiDocument, exampleOf, openApiPath } from "../src/openapi/document.ts";
import { RESPONSE_SCHEMAS } from "../src/openapi/responses.ts";
import { API_ROUTES, type ApiRoute } from "../src/openapi/routes.ts";
import { CountingCa } from "./support/counting-ca.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { CLIENT_IP_HEADER, createTestContext, type TestContext } from "./support/harness.ts";

const METRICS_TOKEN = "openapi-test-metrics-token-0123";
const REDEEM_LIMIT = 3;
const UNKNOWN_ID = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
const OVERSIZED = "x".repeat(70 * 1024);

/** Plain built-in CA, with metrics: most statuses come from here. */
let ctx: TestContext;
/** A CA decorator that fails on request; also has no CRL, since it is not the built-in CA. */
let faulty: TestContext;
let faultyCa: CountingCa;
/** Its database pool is closed, so every query fails as unreachable. */
let down: TestContext;
let clientCounter = 0;

beforeAll(async () => {
  ctx = await createTestContext({
    env: { METRICS_TOKEN, REDEEM_RATE_LIMIT: String(REDEEM_LIMIT) },
    metrics: new ServiceMetrics({ processMetrics: false }),
  });
  faulty = await createTestContext({
    ca: (builtin) => {
      faultyCa = new CountingCa(builtin);
      return faultyCa;
    },
  });
  down = await createTestContext();
  await down.sql.end();
});

afterAll(async () => {
  await ctx?.close();
  await faulty?.close();
  await down?.close();
});

function routeKey(route: ApiRoute): string {
  return `${route.method.toUpperCase()} ${route.path}`;
}

function nextClientIp(): string {
  clientCounter += 1;
  return `203.0.113.${clientCounter}`;
}

/** Builds the route's URL from the examples of its path and query schemas. */
function exampleUrl(route: ApiRoute): string {
  const params = route.params ? exampleOf(route.params) : {};
  const path = route.path.replace(/:(\w+)/g, (_, name: string) => String(params[name]));
  const query = route.query ? exampleOf(route.query) : {};
  const search = new URLSearchParams(
    Object.entries(query).map(([name, value]) => [name, String(value)]),
  ).toString();
  return search ? `${path}?${search}` : path;
}

/** Sends the route's example request: its example URL and, when it has one, its example body. */
function sendExample(
  target: TestContext,
  route: ApiRoute,
  options: { auth?: boolean; headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  const body = options.body ?? (route.body ? JSON.stringify(exampleOf(route.body)) : undefined);
  return target.send(route.method.toUpperCase(), exampleUrl(route), body, {
    auth: options.auth,
    headers: { [CLIENT_IP_HEADER]: nextClientIp(), ...options.headers },
  });
}

async function csrFor(peerName: string): Promise<string> {
  return makeCsr(await generateKey(), { commonName: peerName });
}

function redeemWithFault(kind: "rejected" | "unavailable" | "timeout") {
  return async () => {
    const enrollment = await faulty.enrollment();
    faultyCa.beforeSign = () => {
      throw new CaError(kind, `the test CA failed: ${kind}`);
    };
    try {
      return await faulty.redeem(
        enrollment.token,
        await csrFor(enrollment.peer.name),
        nextClientIp(),
      );
    } finally {
      faultyCa.beforeSign = undefined;
    }
  };
}

type Provocation = (route: ApiRoute) => Promise<Response>;

/** Statuses that every route of a kind answers with, provoked from the route's example request. */
function genericProvocations(route: ApiRoute): Record<number, Provocation> {
  const generic: Record<number, Provocation> = {};
  if (route.auth === "admin") {
    generic[401] = (r) => sendExample(ctx, r, { auth: false });
    generic[403] = async (r) =>
      sendExample(ctx, r, {
        headers: { authorization: `Bearer ${await ctx.adminToken({ scope: "other:scope" })}` },
      });
    generic[503] = (r) => sendExample(down, r);
  }
  if (route.body && route.auth === "admin") {
    generic[413] = (r) => sendExample(ctx, r, { body: JSON.stringify({ padding: OVERSIZED }) });
    generic[415] = (r) => sendExample(ctx, r, { headers: { "content-type": "text/plain" } });
  }
  return generic;
}

/** Route-specific provocations, by route and status. */
const PROVOCATIONS: Record<string, Record<number, Provocation>> = {
  "POST /api/federation/enrollment/:token": {
    201: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.redeem(enrollment.token, await csrFor(enrollment.peer.name), nextClientIp());
    },
    200: async () => {
      const enrollment = await ctx.enrollment();
      const key = await generateKey();
      const csr = await makeCsr(key, { commonName: enrollment.peer.name });
      await ctx.redeem(enrollment.token, csr, nextClientIp());
      return ctx.redeem(enrollment.token, await makeCsr(key), nextClientIp());
    },
    400: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.redeem(enrollment.token, "not a csr", nextClientIp());
    },
    404: (route) => sendExample(ctx, route),
    410: async () => {
      const enrollment = await ctx.enrollment();
      await ctx.redeem(enrollment.token, await csrFor(enrollment.peer.name), nextClientIp());
      return ctx.redeem(enrollment.token, await csrFor(enrollment.peer.name), nextClientIp());
    },
    413: (route) => sendExample(ctx, route, { body: JSON.stringify({ csr: OVERSIZED }) }),
    415: (route) => sendExample(ctx, route, { headers: { "content-type": "text/plain" } }),
    429: async (route) => {
      const headers = { [CLIENT_IP_HEADER]: nextClientIp() };
      for (let attempt = 0; attempt < REDEEM_LIMIT; attempt++) {
        await sendExample(ctx, route, { headers });
      }
      return sendExample(ctx, route, { headers });
    },
    502: redeemWithFault("rejected"),
    503: redeemWithFault("unavailable"),
    504: redeemWithFault("timeout"),
  },
  "POST /api/federation/peers": {
    201: () => ctx.send("POST", "/api/federation/peers", { name: `openapi-${nextClientIp()}` }),
    400: () => ctx.send("POST", "/api/federation/peers", { name: "Not A Hostname" }),
    409: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("POST", "/api/federation/peers", { name: enrollment.peer.name });
    },
  },
  "GET /api/federation/peers/:id": {
    200: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("GET", `/api/federation/peers/${enrollment.peer.id}`);
    },
    400: () => ctx.send("GET", "/api/federation/peers/not-a-uuid"),
    404: () => ctx.send("GET", `/api/federation/peers/${UNKNOWN_ID}`),
  },
  "POST /api/federation/grants": {
    201: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("POST", "/api/federation/grants", {
        peerId: enrollment.peer.id,
        scopes: ["a"],
      });
    },
    400: () => ctx.send("POST", "/api/federation/grants", { peerId: UNKNOWN_ID, scopes: "a" }),
    404: (route) => sendExample(ctx, route),
  },
  "GET /api/federation/grants/:id": {
    200: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("GET", `/api/federation/grants/${enrollment.grant.id}`);
    },
    400: () => ctx.send("GET", "/api/federation/grants/not-a-uuid"),
    404: (route) => sendExample(ctx, route),
  },
  "POST /api/federation/grants/:id/revoke": {
    200: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("POST", `/api/federation/grants/${enrollment.grant.id}/revoke`, {
        reason: "privilegeWithdrawn",
      });
    },
    400: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("POST", `/api/federation/grants/${enrollment.grant.id}/revoke`, {
        reason: "no-such-reason",
      });
    },
    404: (route) => sendExample(ctx, route),
  },
  "POST /api/federation/enrollment/tokens": {
    201: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("POST", "/api/federation/enrollment/tokens", {
        grantId: enrollment.grant.id,
      });
    },
    400: () => ctx.send("POST", "/api/federation/enrollment/tokens", { grantId: "x" }),
    404: (route) => sendExample(ctx, route),
    409: async () => {
      const enrollment = await ctx.enrollment();
      await ctx.redeem(enrollment.token, await csrFor(enrollment.peer.name), nextClientIp());
      return ctx.send("POST", "/api/federation/enrollment/tokens", {
        grantId: enrollment.grant.id,
      });
    },
  },
  "GET /api/federation/enrollment/tokens": {
    200: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("GET", `/api/federation/enrollment/tokens?grantId=${enrollment.grant.id}`);
    },
    400: () => ctx.send("GET", "/api/federation/enrollment/tokens?grantId=x"),
  },
  "DELETE /api/federation/enrollment/tokens/:id": {
    204: async () => {
      const enrollment = await ctx.enrollment();
      return ctx.send("DELETE", `/api/federation/enrollment/tokens/${enrollment.tokenId}`);
    },
    400: () => ctx.send("DELETE", "/api/federation/enrollment/tokens/x"),
    404: (route) => sendExample(ctx, route),
    409: async () => {
      const enrollment = await ctx.enrollment();
      await ctx.redeem(enrollment.token, await csrFor(enrollment.peer.name), nextClientIp());
      return ctx.send("DELETE", `/api/federation/enrollment/tokens/${enrollment.tokenId}`);
    },
  },
  "GET /api/federation/audit": {
    200: (route) => sendExample(ctx, route),
    400: () => ctx.send("GET", "/api/federation/audit?limit=0"),
  },
  "GET /api/federation/crl": {
    200: (route) => sendExample(ctx, route),
    400: () => ctx.send("GET", "/api/federation/crl?format=xml", undefined, { auth: false }),
    404: (route) => sendExample(faulty, route),
    503: (route) => sendExample(down, route),
  },
  "GET /api/federation/ca/roots": { 200: (route) => sendExample(ctx, route) },
  "GET /healthz": { 200: (route) => sendExample(ctx, route) },
  "GET /readyz": {
    200: (route) => sendExample(ctx, route),
    503: (route) => sendExample(down, route),
  },
  "GET /metrics": {
    200: (route) =>
      sendExample(ctx, route, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }),
    401: (route) => sendExample(ctx, route, { auth: false }),
  },
  "GET /openapi.json": { 200: (route) => sendExample(ctx, route) },
  "GET /docs": { 200: (route) => sendExample(ctx, route) },
};

function documentedStatuses(route: ApiRoute): number[] {
  const statuses = new Set(Object.keys(route.responses).map(Number));
  for (const code of route.problems) statuses.add(PROBLEMS[code][0]);
  return [...statuses].sort((a, b) => a - b);
}

function provocation(route: ApiRoute, status: number): Provocation | undefined {
  return PROVOCATIONS[routeKey(route)]?.[status] ?? genericProvocations(route)[status];
}

describe("openapi document", () => {
  test("documents every registered route", () => {
    const registered = new Set(
      ctx.app.routes
        .filter((route) => route.method !== "ALL")
        .map((route) => `${route.method} ${route.path}`),
    );
    expect([...registered].sort()).toEqual(API_ROUTES.map(routeKey).sort());
  });

  test("lists each route under its path", async () => {
    const document = await (
      await ctx.send("GET", "/openapi.json", undefined, { auth: false })
    ).json();
    expect(document.openapi).toBe("3.1.0");
    for (const route of API_ROUTES) {
      const operation = document.paths[openApiPath(route.path)]?.[route.method];
      expect({ route: routeKey(route), id: operation?.operationId }).toEqual({
        route: routeKey(route),
        id: route.operationId,
      });
    }
  });

  test("resolves every schema reference", () => {
    const document = buildOpenApiDocument({ serverUrl: "https://enroll.test" });
    const text = JSON.stringify(document);
    const components = (document.components as { schemas: Record<string, unknown> }).schemas;
    const names = [...text.matchAll(/"#\/components\/schemas\/(\w+)"/g)].map((match) => match[1]);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      expect({ name, defined: String(name) in components }).toEqual({ name, defined: true });
    }
  });

  test("declares each route's authentication", () => {
    const document = buildOpenApiDocument({ serverUrl: "https://enroll.test" }) as {
      paths: Record<string, Record<string, { security: unknown[] }>>;
    };
    for (const route of API_ROUTES) {
      const security = document.paths[openApiPath(route.path)]?.[route.method]?.security;
      const expected = {
        admin: [{ adminJwt: [] }],
        metrics: [{}, { metricsToken: [] }],
        none: [],
      }[route.auth];
      expect({ route: routeKey(route), security }).toEqual({
        route: routeKey(route),
        security: expected,
      });
    }
  });

  test("request examples pass validation", () => {
    const schemas: [string, ZodObject][] = [];
    for (const route of API_ROUTES) {
      for (const part of ["params", "query", "body"] as const) {
        const schema = route[part];
        if (schema) schemas.push([`${routeKey(route)} ${part}`, schema]);
      }
    }
    for (const [name, schema] of schemas) {
      const result = schema.safeParse(exampleOf(schema));
      expect({ name, issues: result.error?.issues ?? [] }).toEqual({ name, issues: [] });
    }
  });

  test("every documented status has a provocation", () => {
    const missing = API_ROUTES.flatMap((route) =>
      documentedStatuses(route)
        .filter((status) => !provocation(route, status))
        .map((status) => `${routeKey(route)} ${status}`),
    );
    expect(missing).toEqual([]);
  });

  for (const route of API_ROUTES) {
    for (const status of documentedStatuses(route)) {
      test(`${routeKey(route)} answers ${status}`, async () => {
        const provoke = provocation(route, status);
        if (!provoke) throw new Error(`no provocation for ${routeKey(route)} ${status}`);
        const response = await provoke(route);
        const text = await response.text();
        expect({ status: response.status, text: response.status === status ? "" : text }).toEqual({
          status,
          text: "",
        });

        const codes = route.problems.filter((code) => PROBLEMS[code][0] === status);
        const documented = route.responses[status];
        if (!documented) {
          expect(response.headers.get("content-type")).toBe("application/problem+json");
          expect(codes).toContain(JSON.parse(text).code);
          return;
        }
        if (documented.schema) {
          const strict = RESPONSE_SCHEMAS[documented.schema].strict();
          const result = strict.safeParse(JSON.parse(text));
          expect(result.error?.issues ?? []).toEqual([]);
        }
        if (documented.mediaTypes) {
          const contentType = response.headers.get("content-type") ?? "";
          const listed = documented.mediaTypes.some((type) => contentType.startsWith(type));
          expect({ contentType, listed }).toEqual({ contentType, listed: true });
        }
      });
    }
  }
});

describe("docs page", () => {
  test("renders every operation", async () => {
    const response = await ctx.send("GET", "/docs", undefined, { auth: false });
    expect(response.status).toBe(200);
    const html = await response.text();
    for (const route of API_ROUTES) expect(html).toContain(`id="${route.operationId}"`);
  });

  test("loads nothing from elsewhere", async () => {
    const response = await ctx.send("GET", "/docs", undefined, { auth: false });
    expect(response.headers.get("content-security-policy")).toStartWith("default-src 'none'");
    const html = await response.text();
    expect(html).not.toContain("<script");
    expect(html).not.toContain("<link");
    expect(html).not.toMatch(/src=/);
    expect(html).not.toMatch(/href="https?:/);
  });
});
