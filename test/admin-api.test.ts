import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, type TestContext, uniquePeerName } from "./support/harness.ts";

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext({ env: { TOKEN_TTL_MAX_SECONDS: "3600" } });
});

afterAll(async () => {
  await ctx.close();
});

async function createPeer(name = uniquePeerName()) {
  const response = await ctx.send("POST", "/api/federation/peers", { name });
  expect(response.status).toBe(201);
  return response.json();
}

async function createGrant(peerId: string, scopes = ["orders:read"]) {
  const response = await ctx.send("POST", "/api/federation/grants", { peerId, scopes });
  expect(response.status).toBe(201);
  return response.json();
}

describe("peers", () => {
  test("creates and reads a peer", async () => {
    const name = uniquePeerName();
    const response = await ctx.send("POST", "/api/federation/peers", {
      name,
      endpoint: "https://peer.example.org/api",
    });
    expect(response.status).toBe(201);
    const peer = await response.json();
    expect(peer.name).toBe(name);
    expect(peer.endpoint).toBe("https://peer.example.org/api");
    expect(peer.certSerial).toBeNull();

    const read = await ctx.send("GET", `/api/federation/peers/${peer.id}`);
    expect(read.status).toBe(200);
    expect((await read.json()).name).toBe(name);
  });

  test("rejects a duplicate name with 409", async () => {
    const peer = await createPeer();
    const response = await ctx.send("POST", "/api/federation/peers", { name: peer.name });
    expect(response.status).toBe(409);
    const problem = await response.json();
    expect(problem.code).toBe("conflict");
    expect(problem.requestId).toBe(response.headers.get("x-request-id"));
  });

  test("rejects names unusable as a common name", async () => {
    for (const name of [
      "",
      "Peer-A",
      "peer_a",
      "-peer",
      "peer a",
      `${"a".repeat(64)}.example`,
      "a/b",
    ]) {
      const response = await ctx.send("POST", "/api/federation/peers", { name });
      expect({ name, status: response.status }).toEqual({ name, status: 400 });
    }
  });

  test("rejects a non-http endpoint", async () => {
    const response = await ctx.send("POST", "/api/federation/peers", {
      name: uniquePeerName(),
      endpoint: "ftp://peer.example.org",
    });
    expect(response.status).toBe(400);
    expect((await response.json()).errors[0].path).toBe("endpoint");
  });

  test("answers 404 for an unknown peer", async () => {
    const response = await ctx.send("GET", `/api/federation/peers/${crypto.randomUUID()}`);
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
  });
});

describe("grants", () => {
  test("creates a pending grant", async () => {
    const peer = await createPeer();
    const grant = await createGrant(peer.id, ["orders:read", "orders:write"]);
    expect(grant.status).toBe("pending");
    expect(grant.scopes).toEqual(["orders:read", "orders:write"]);
    const read = await (await ctx.send("GET", `/api/federation/grants/${grant.id}`)).json();
    expect(read.peerId).toBe(peer.id);
  });

  test("answers 404 for an unknown peer", async () => {
    const response = await ctx.send("POST", "/api/federation/grants", {
      peerId: crypto.randomUUID(),
      scopes: [],
    });
    expect(response.status).toBe(404);
  });

  test("rejects repeated scopes", async () => {
    const peer = await createPeer();
    const response = await ctx.send("POST", "/api/federation/grants", {
      peerId: peer.id,
      scopes: ["a", "a"],
    });
    expect(response.status).toBe(400);
  });
});

describe("enrollment tokens", () => {
  test("creates a token shown only once", async () => {
    const peer = await createPeer();
    const grant = await createGrant(peer.id);
    const response = await ctx.send("POST", "/api/federation/enrollment/tokens", {
      grantId: grant.id,
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = await response.json();
    expect(body.token).toMatch(/^fedtok_[0-9A-Za-z]{49}$/);
    expect(body.grantId).toBe(grant.id);
    expect(body.redeemUrl).toBe(`https://enroll.test/api/federation/enrollment/${body.token}`);
    expect(body.caFingerprint).toMatch(/^[0-9a-f]{64}$/);
    const ttl = Date.parse(body.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(14 * 60_000);
    expect(ttl).toBeLessThanOrEqual(15 * 60_000);

    const listed = await (
      await ctx.send("GET", `/api/federation/enrollment/tokens?grantId=${grant.id}`)
    ).json();
    expect(listed.items).toHaveLength(1);
    expect(listed.items[0].status).toBe("active");
    expect(JSON.stringify(listed)).not.toContain(body.token);
    expect(listed.items[0].tokenHash).toBeUndefined();
  });

  test("caps ttlSeconds at the configured maximum", async () => {
    const grant = await createGrant((await createPeer()).id);
    const body = await (
      await ctx.send("POST", "/api/federation/enrollment/tokens", {
        grantId: grant.id,
        ttlSeconds: 7 * 24 * 3600,
      })
    ).json();
    const ttl = Date.parse(body.expiresAt) - Date.now();
    expect(ttl).toBeLessThanOrEqual(3600 * 1000);
    expect(ttl).toBeGreaterThan(3590 * 1000);
  });

  test("answers 404 for an unknown grant", async () => {
    const response = await ctx.send("POST", "/api/federation/enrollment/tokens", {
      grantId: crypto.randomUUID(),
    });
    expect(response.status).toBe(404);
  });

  test("answers 409 when the grant is not pending", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.sql`update federation_grants set status = 'active' where id = ${enrollment.grant.id}`;
    const response = await ctx.send("POST", "/api/federation/enrollment/tokens", {
      grantId: enrollment.grant.id,
    });
    expect(response.status).toBe(409);
    expect((await response.json()).code).toBe("grant_not_pending");
  });

  test("allows a new token for a pending grant", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.sql`
      update federation_enrollment_tokens set expires_at = now() - interval '1 second'
      where id = ${enrollment.tokenId}
    `;
    const response = await ctx.send("POST", "/api/federation/enrollment/tokens", {
      grantId: enrollment.grant.id,
    });
    expect(response.status).toBe(201);
    const listed = await (
      await ctx.send("GET", `/api/federation/enrollment/tokens?grantId=${enrollment.grant.id}`)
    ).json();
    const statuses = listed.items.map((item: { status: string }) => item.status).sort();
    expect(statuses).toEqual(["active", "expired"]);
  });

  test("revokes an unused token", async () => {
    const enrollment = await ctx.enrollment();
    const response = await ctx.send(
      "DELETE",
      `/api/federation/enrollment/tokens/${enrollment.tokenId}`,
    );
    expect(response.status).toBe(204);
    const again = await ctx.send(
      "DELETE",
      `/api/federation/enrollment/tokens/${enrollment.tokenId}`,
    );
    expect(again.status).toBe(204);
    const listed = await (
      await ctx.send("GET", `/api/federation/enrollment/tokens?grantId=${enrollment.grant.id}`)
    ).json();
    expect(listed.items[0].status).toBe("revoked");
  });

  test("refuses to revoke a used token", async () => {
    const enrollment = await ctx.enrollment();
    await ctx.sql`update federation_enrollment_tokens set used_at = now() where id = ${enrollment.tokenId}`;
    const response = await ctx.send(
      "DELETE",
      `/api/federation/enrollment/tokens/${enrollment.tokenId}`,
    );
    expect(response.status).toBe(409);
    expect((await response.json()).code).toBe("token_used");
  });

  test("answers 404 when revoking an unknown token", async () => {
    const response = await ctx.send(
      "DELETE",
      `/api/federation/enrollment/tokens/${crypto.randomUUID()}`,
    );
    expect(response.status).toBe(404);
  });

  test("records the admin subject as creator", async () => {
    const peer = await createPeer();
    const grant = await createGrant(peer.id);
    const token = await ctx.adminToken({ subject: "alice" });
    await ctx.send(
      "POST",
      "/api/federation/enrollment/tokens",
      { grantId: grant.id },
      { headers: { authorization: `Bearer ${token}` } },
    );
    const listed = await (
      await ctx.send("GET", `/api/federation/enrollment/tokens?grantId=${grant.id}`)
    ).json();
    expect(listed.items[0].createdBy).toBe("alice");
  });
});

describe("audit", () => {
  test("pages newest first with a cursor", async () => {
    const enrollment = await ctx.enrollment();
    for (let i = 0; i < 3; i++) {
      await ctx.send("POST", "/api/federation/enrollment/tokens", { grantId: enrollment.grant.id });
    }
    const first = await (await ctx.send("GET", "/api/federation/audit?limit=2")).json();
    expect(first.items).toHaveLength(2);
    expect(first.items[0].id).toBeGreaterThan(first.items[1].id);
    expect(first.nextCursor).toBe(first.items[1].id);
    const second = await (
      await ctx.send("GET", `/api/federation/audit?limit=2&cursor=${first.nextCursor}`)
    ).json();
    expect(second.items[0].id).toBeLessThan(first.items[1].id);
  });

  test("filters by resource id", async () => {
    const enrollment = await ctx.enrollment();
    const body = await (
      await ctx.send("GET", `/api/federation/audit?resourceId=${enrollment.grant.id}`)
    ).json();
    expect(body.items).toHaveLength(1);
    expect(body.items[0].verb).toBe("grant.create");
    expect(body.items[0].actor).toBe("test-admin");
    expect(body.nextCursor).toBeNull();
  });

  test("rejects a limit above 200", async () => {
    const response = await ctx.send("GET", "/api/federation/audit?limit=500");
    expect(response.status).toBe(400);
  });
});
