// Sends the hostile input corpus (test/corpus) and a seeded fuzz loop to the redeem route and the
// admin API in process. Every response must be a 4xx problem+json body. test/hostile-http.test.ts
// sends a subset over HTTPS to the service as a child process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  type CorpusCase,
  caseBody,
  caseHeaders,
  chunkedStream,
  corpusPem,
  type Expectation,
  expectProblem,
  fill,
  loadCorpus,
  needsEnrollment,
  type TemplateValues,
  templateValues,
} from "./support/corpus.ts";
import { runFuzz } from "./support/fuzz.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

/** Upper bound for one in-process request; a request that takes longer counts as a hang. */
const REQUEST_TIMEOUT_MS = 10_000;

let ctx: TestContext;

beforeAll(async () => {
  // A high failure limit keeps one case's invalid CSRs from locking a token another case uses.
  ctx = await createTestContext({ env: { TOKEN_MAX_FAILED_ATTEMPTS: "1000" } });
});

afterAll(async () => {
  await ctx.close();
});

function withTimeout<T>(promise: Promise<T>, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} hung`)), REQUEST_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function valuesFor(c: CorpusCase): Promise<TemplateValues> {
  if (!needsEnrollment(c)) return templateValues();
  const enrollment = await ctx.enrollment();
  return templateValues({
    token: enrollment.token,
    peerName: enrollment.peer.name,
    peerId: enrollment.peer.id,
    grantId: enrollment.grant.id,
  });
}

async function sendCase(c: CorpusCase, admin: boolean): Promise<Response> {
  const values = await valuesFor(c);
  const body = caseBody(c, values);
  const headers = caseHeaders(c, body);
  if (admin) headers.authorization = `Bearer ${await ctx.adminToken()}`;
  const request = new Request(`http://localhost${fill(c.path, values)}`, {
    method: c.method ?? "POST",
    headers,
    body: body && c.stream ? chunkedStream(body) : body,
    duplex: "half",
  } as RequestInit);
  return withTimeout(Promise.resolve(ctx.app.request(request)), c.name);
}

async function expectResponse(response: Response, expected: Expectation): Promise<void> {
  expectProblem(
    {
      status: response.status,
      contentType: response.headers.get("content-type"),
      body: await response.text(),
    },
    expected,
  );
}

describe("hostile input to redeem", () => {
  for (const { file, cases } of loadCorpus<CorpusCase>("redeem")) {
    for (const c of cases) {
      test(`${file}: ${c.name}`, async () => {
        await expectResponse(await sendCase(c, false), c.expect);
      });
    }
  }
});

describe("hostile input to admin API", () => {
  for (const { file, cases } of loadCorpus<CorpusCase>("admin")) {
    for (const c of cases) {
      test(`${file}: ${c.name}`, async () => {
        await expectResponse(await sendCase(c, true), c.expect);
      });
    }
  }
});

describe("fuzzed requests", () => {
  test("never answer 5xx or hang", async () => {
    const result = await runFuzz({
      ctx,
      csrPem: corpusPem("ec-p256-valid.csr.pem"),
      seed: 0x5eed_2024,
      requests: 300,
      budgetMs: 40_000,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    expect(result.failures).toEqual([]);
    expect(result.sent).toBeGreaterThanOrEqual(100);
    expect((await ctx.app.request("/healthz")).status).toBe(200);
  });
});
