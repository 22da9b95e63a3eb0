import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CaError } from "../src/ca/authority.ts";
import { CountingCa } from "./support/counting-ca.ts";
import { generateKey, makeCsr } from "./support/csr.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

const REDEEM_LIMIT = 3;

let ctx: TestContext;
let ca: CountingCa;

beforeAll(async () => {
  ctx = await createTestContext({
    env: { REDEEM_RATE_LIMIT: String(REDEEM_LIMIT) },
    ca: (builtin) => {
      ca = new CountingCa(builtin);
      return ca;
    },
  });
});

afterAll(async () => {
  await ctx.close();
});

function requestLines(requestId: string | null) {
  return ctx.logs.filter((line) => line.msg === "request" && line.requestId === requestId);
}

describe("request log", () => {
  test("logs one line per request", async () => {
    const response = await ctx.send("GET", "/healthz", undefined, { auth: false });
    const lines = requestLines(response.headers.get("x-request-id"));
    expect(lines).toHaveLength(1);
    const line = lines[0] as Record<string, unknown>;
    expect(line.method).toBe("GET");
    expect(line.route).toBe("/healthz");
    expect(line.status).toBe(200);
    expect(line.outcome).toBe("success");
    expect(typeof line.durationMs).toBe("number");
    expect(line.level).toBe(30);
  });

  test("echoes the request id in problems", async () => {
    const response = await ctx.send("GET", "/api/federation/peers/not-a-uuid");
    expect(response.status).toBe(400);
    const requestId = response.headers.get("x-request-id");
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await response.json()).requestId).toBe(requestId);
    expect(requestLines(requestId)).toHaveLength(1);
  });

  test("keeps a client request id", async () => {
    const response = await ctx.send("GET", "/healthz", undefined, {
      auth: false,
      headers: { "x-request-id": "lb-7f3a-0001" },
    });
    expect(response.headers.get("x-request-id")).toBe("lb-7f3a-0001");
    expect(requestLines("lb-7f3a-0001")).toHaveLength(1);
  });

  test("logs unmatched routes", async () => {
    const response = await ctx.send("GET", "/no/such/route", undefined, { auth: false });
    expect(response.status).toBe(404);
    const [line] = requestLines(response.headers.get("x-request-id"));
    expect(line?.route).toBe("unmatched");
    expect(line?.status).toBe(404);
  });

  test("logs the admin route behind authentication", async () => {
    const response = await ctx.send(
      "POST",
      "/api/federation/enrollment/tokens",
      {},
      { auth: false },
    );
    expect(response.status).toBe(401);
    const [line] = requestLines(response.headers.get("x-request-id"));
    expect(line?.route).toBe("/api/federation/enrollment/tokens");
  });

  test("never logs a redeem token", async () => {
    const enrollment = await ctx.enrollment();
    const key = await generateKey();
    const csr = await makeCsr(key, { commonName: enrollment.peer.name });
    const tokens = [enrollment.token];
    const statuses: number[] = [];
    const redeem = async (token: string, body: string, clientIp: string) => {
      const response = await ctx.redeem(token, body, clientIp);
      statuses.push(response.status);
    };

    ca.beforeSign = () => {
      throw new CaError("timeout", "the test CA timed out");
    };
    await redeem(enrollment.token, csr, "198.51.100.1");
    ca.beforeSign = undefined;
    await redeem(enrollment.token, "not a csr", "198.51.100.2");
    await redeem(enrollment.token, csr, "198.51.100.3");
    await redeem(enrollment.token, await makeCsr(key), "198.51.100.4");
    await redeem(enrollment.token, await makeCsr(await generateKey()), "198.51.100.5");
    const malformed = `${enrollment.token.slice(0, -4)}zzzz`;
    tokens.push(malformed);
    await redeem(malformed, csr, "198.51.100.6");
    for (let attempt = 0; attempt <= REDEEM_LIMIT; attempt++) {
      await redeem(enrollment.token, csr, "198.51.100.7");
    }
    expect(statuses.slice(0, 6)).toEqual([504, 400, 201, 200, 410, 404]);
    expect(statuses.at(-1)).toBe(429);

    const text = ctx.logText();
    for (const token of tokens) expect(text).not.toContain(token);
    expect(text).not.toContain(enrollment.token.slice(7, 30));
    const redeemLines = ctx.logs.filter(
      (line) => line.msg === "request" && line.method === "POST" && line.status !== 201,
    );
    expect(redeemLines.some((line) => line.route === "/api/federation/enrollment/:token")).toBe(
      true,
    );
  });

  test("never logs the admin JWT", async () => {
    const jwt = await ctx.adminToken();
    await ctx.send("GET", "/api/federation/audit", undefined, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    expect(ctx.logText()).not.toContain(jwt);
    expect(ctx.logText()).not.toContain(jwt.split(".")[2] as string);
  });

  test("logs a CA failure with its ids", async () => {
    const enrollment = await ctx.enrollment();
    ca.beforeSign = () => {
      throw new CaError("unavailable", "the test CA is down");
    };
    let response: Response;
    try {
      const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
      response = await ctx.redeem(enrollment.token, csr, "198.51.100.20");
    } finally {
      ca.beforeSign = undefined;
    }
    expect(response.status).toBe(503);
    const requestId = response.headers.get("x-request-id");
    const failure = ctx.logs.find(
      (line) => line.requestId === requestId && line.tokenId === enrollment.tokenId,
    );
    expect(failure?.level).toBe(50);
    expect(failure?.grantId).toBe(enrollment.grant.id);
    expect((failure?.err as { message?: string })?.message).toBe("the test CA is down");
    const [line] = requestLines(requestId);
    expect(line?.level).toBe(50);
    expect(line?.outcome).toBe("ca_error");
  });
});
