import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { KeyObject, randomBytes } from "node:crypto";
import { PROBLEM_CONTENT_TYPE } from "../src/http/problem.ts";
import { createTestContext, TEST_ADMIN_SECRET, type TestContext } from "./support/harness.ts";
import {
  type AsymmetricAlg,
  type ClaimOptions,
  closedPortUrl,
  type JwksServer,
  signJwt,
  startJwksServer,
  unsecuredJwt,
} from "./support/jwks-server.ts";

const ISSUER = "https://idp.test";
const AUDIENCE = "federation-enrollment";
const ENV = { ADMIN_JWT_ISSUER: ISSUER, ADMIN_JWT_AUDIENCE: AUDIENCE };
const VALID: ClaimOptions = { issuer: ISSUER, audience: AUDIENCE };
const REALM = 'Bearer realm="federation-admin"';
const SECRET = new TextEncoder().encode(TEST_ADMIN_SECRET);

let jwks: JwksServer;
let secretCtx: TestContext;
let jwksCtx: TestContext;

beforeAll(async () => {
  jwks = await startJwksServer();
  secretCtx = await createTestContext({ env: ENV });
  jwksCtx = await createTestContext({ env: ENV, adminKeys: { kind: "jwks", url: jwks.url } });
});

afterAll(async () => {
  await secretCtx.close();
  await jwksCtx.close();
  await jwks.close();
});

function get(ctx: TestContext, authorization?: string, path = "/api/federation/audit") {
  return ctx.app.request(path, { headers: authorization ? { authorization } : {} });
}

async function expectInvalidToken(response: Response): Promise<void> {
  expect(response.status).toBe(401);
  expect(response.headers.get("content-type")).toBe(PROBLEM_CONTENT_TYPE);
  expect((await response.json()).code).toBe("unauthorized");
  const challenge = response.headers.get("www-authenticate") ?? "";
  expect(challenge.startsWith(REALM)).toBe(true);
  expect(challenge).toContain('error="invalid_token"');
}

function asymmetric(alg: AsymmetricAlg, options: ClaimOptions = VALID) {
  const key = jwks.keys[alg];
  return signJwt({ alg, kid: key.kid }, key.privateKey, options);
}

describe("admin auth with a shared secret", () => {
  test("accepts a valid token", async () => {
    const response = await get(
      secretCtx,
      `Bearer ${await signJwt({ alg: "HS256" }, SECRET, VALID)}`,
    );
    expect(response.status).toBe(200);
  });

  test("challenges a missing header", async () => {
    const response = await get(secretCtx);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe(REALM);
  });

  test("rejects malformed headers", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, VALID);
    for (const header of [`Basic ${token}`, "Bearer", `Bearer ${token} extra`, `Token ${token}`]) {
      await expectInvalidToken(await get(secretCtx, header));
    }
  });

  test("rejects a garbage token", async () => {
    await expectInvalidToken(await get(secretCtx, "Bearer not.a.jwt"));
    await expectInvalidToken(await get(secretCtx, "Bearer abc"));
  });

  test("rejects a wrong signature", async () => {
    const token = await signJwt({ alg: "HS256" }, randomBytes(48), VALID);
    await expectInvalidToken(await get(secretCtx, `Bearer ${token}`));
  });

  test("rejects alg none", async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      sub: "a",
      scope: "federation:admin",
      iss: ISSUER,
      aud: AUDIENCE,
      exp: now + 60,
    };
    await expectInvalidToken(await get(secretCtx, `Bearer ${unsecuredJwt(payload)}`));
  });

  test("rejects an asymmetric algorithm", async () => {
    await expectInvalidToken(await get(secretCtx, `Bearer ${await asymmetric("RS256")}`));
  });

  test("rejects expiry beyond the leeway", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, expiresIn: -60 });
    const response = await get(secretCtx, `Bearer ${token}`);
    expect(response.headers.get("www-authenticate")).toContain("expired");
    await expectInvalidToken(response);
  });

  test("accepts expiry within the leeway", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, expiresIn: -10 });
    expect((await get(secretCtx, `Bearer ${token}`)).status).toBe(200);
  });

  test("rejects nbf beyond the leeway", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, notBeforeIn: 120 });
    await expectInvalidToken(await get(secretCtx, `Bearer ${token}`));
  });

  test("accepts nbf within the leeway", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, notBeforeIn: 10 });
    expect((await get(secretCtx, `Bearer ${token}`)).status).toBe(200);
  });

  test("rejects the wrong issuer", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, issuer: "https://evil" });
    await expectInvalidToken(await get(secretCtx, `Bearer ${token}`));
  });

  test("rejects the wrong audience", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, audience: "other-api" });
    await expectInvalidToken(await get(secretCtx, `Bearer ${token}`));
  });

  test("rejects a missing scope", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, extra: { scope: "read" } });
    const response = await get(secretCtx, `Bearer ${token}`);
    expect(response.status).toBe(403);
    expect((await response.json()).code).toBe("forbidden");
    const challenge = response.headers.get("www-authenticate") ?? "";
    expect(challenge.startsWith(REALM)).toBe(true);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="federation:admin"');
  });

  test("accepts scope and scp claims", async () => {
    const claims = [
      { scope: "audit:read federation:admin" },
      { scope: undefined, scp: ["audit:read", "federation:admin"] },
    ];
    for (const extra of claims) {
      const token = await signJwt({ alg: "HS256" }, SECRET, { ...VALID, extra });
      const response = await get(secretCtx, `Bearer ${token}`);
      expect({ extra, status: response.status }).toEqual({ extra, status: 200 });
    }
  });

  test("ignores a query string token", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, VALID);
    for (const name of ["access_token", "token", "jwt"]) {
      const response = await get(secretCtx, undefined, `/api/federation/audit?${name}=${token}`);
      expect({ name, status: response.status }).toEqual({ name, status: 401 });
    }
  });
});

describe("admin auth with a JWKS", () => {
  test("accepts RS256, ES256 and EdDSA", async () => {
    for (const alg of ["RS256", "ES256", "EdDSA"] as const) {
      const response = await get(jwksCtx, `Bearer ${await asymmetric(alg)}`);
      expect({ alg, status: response.status }).toEqual({ alg, status: 200 });
    }
  });

  test("rejects HS256 signed with the public key", async () => {
    const rsa = jwks.keys.RS256;
    const spki = KeyObject.from(rsa.publicKey);
    const secrets = {
      pem: Buffer.from(spki.export({ type: "spki", format: "pem" })),
      der: spki.export({ type: "spki", format: "der" }),
      jwk: Buffer.from(JSON.stringify(rsa.publicJwk)),
      modulus: Buffer.from(rsa.publicJwk.n ?? "", "base64url"),
    };
    for (const [form, secret] of Object.entries(secrets)) {
      const token = await signJwt({ alg: "HS256", kid: rsa.kid }, secret, VALID);
      const response = await get(jwksCtx, `Bearer ${token}`);
      expect({ form, status: response.status }).toEqual({ form, status: 401 });
      await expectInvalidToken(response);
    }
  });

  test("rejects an HS256 header", async () => {
    const token = await signJwt({ alg: "HS256" }, SECRET, VALID);
    await expectInvalidToken(await get(jwksCtx, `Bearer ${token}`));
  });

  test("rejects alg none", async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      sub: "a",
      scope: "federation:admin",
      iss: ISSUER,
      aud: AUDIENCE,
      exp: now + 60,
    };
    await expectInvalidToken(await get(jwksCtx, `Bearer ${unsecuredJwt(payload)}`));
  });

  test("rejects a key outside the set", async () => {
    const { privateKey, publicKey } = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    );
    const jwk = await crypto.subtle.exportKey("jwk", publicKey);
    const headers = [
      { alg: "ES256", kid: jwks.keys.ES256.kid },
      { alg: "ES256", jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } },
    ];
    for (const header of headers) {
      await expectInvalidToken(
        await get(jwksCtx, `Bearer ${await signJwt(header, privateKey, VALID)}`),
      );
    }
  });

  test("rejects expiry beyond the leeway", async () => {
    const token = await asymmetric("ES256", { ...VALID, expiresIn: -60 });
    await expectInvalidToken(await get(jwksCtx, `Bearer ${token}`));
  });
});

describe("admin auth when the JWKS fails", () => {
  const cases = [
    { name: "down", url: () => closedPortUrl() },
    { name: "answering 500", url: async () => jwks.failingUrl },
    { name: "answering HTML", url: async () => jwks.htmlUrl },
  ];
  for (const { name, url } of cases) {
    test(`answers 503 when ${name}`, async () => {
      const ctx = await createTestContext({
        env: ENV,
        adminKeys: { kind: "jwks", url: await url() },
      });
      try {
        const response = await get(ctx, `Bearer ${await asymmetric("ES256")}`);
        expect(response.status).toBe(503);
        expect(response.headers.get("content-type")).toBe(PROBLEM_CONTENT_TYPE);
        expect((await response.json()).code).toBe("auth_unavailable");
        const logged = ctx.logs.find((entry) => entry.msg === "admin JWKS is unavailable");
        expect(logged?.level).toBe(50);
      } finally {
        await ctx.close();
      }
    });
  }
});
