// Sends the corpus cases marked "http" and the raw request lines of test/corpus/http over HTTPS
// to the service as a child process, under Bun and under Node. Each runtime's own HTTP parser and
// URL handling then process the bytes before the application does.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Database } from "../src/db/connect.ts";
import { signAdminToken } from "../src/server/admin-secret.ts";
import {
  type CorpusCase,
  caseBody,
  caseHeaders,
  expectProblem,
  fill,
  loadCorpus,
  needsEnrollment,
  type RawCase,
  type TemplateValues,
  templateValues,
} from "./support/corpus.ts";
import { createTestDatabase, usingPostgres } from "./support/database.ts";
import { type HttpsOptions, httpsRequest, rawExchange } from "./support/https-client.ts";
import { type Runtime, type ServiceProcess, startService } from "./support/service-process.ts";

const ADMIN_SECRET = "hostile-http-admin-secret-0123456789abcdef";
const RUNTIMES: Runtime[] = ["bun", "node"];

for (const runtime of RUNTIMES) {
  describe(`hostile input over HTTPS on ${runtime}`, () => {
    let database: Database | undefined;
    let service: ServiceProcess;
    let client: HttpsOptions;
    let adminToken: string;

    beforeAll(async () => {
      database = usingPostgres ? await createTestDatabase() : undefined;
      service = await startService({
        runtime,
        env: {
          ADMIN_JWT_SECRET: ADMIN_SECRET,
          REDEEM_RATE_LIMIT: "100000",
          ...(database ? { DATABASE_URL: database.url } : {}),
        },
      });
      const ca = await readFile(path.join(service.dataDir, "ca", "root.crt"), "utf8");
      client = { port: service.port, ca };
      adminToken = await signAdminToken({
        secret: ADMIN_SECRET,
        subject: "hostile-http",
        scope: "federation:admin",
        ttlSeconds: 600,
      });
    });

    afterAll(async () => {
      await service?.stop();
      await service?.cleanup();
      await database?.close();
    });

    async function adminJson(url: string, body: unknown): Promise<Record<string, string>> {
      const response = await httpsRequest(
        client,
        "POST",
        url,
        { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
        Buffer.from(JSON.stringify(body)),
      );
      if (response.status !== 201) throw new Error(`${url}: ${response.status} ${response.body}`);
      return JSON.parse(response.body);
    }

    async function valuesFor(c: CorpusCase): Promise<TemplateValues> {
      if (!needsEnrollment(c)) return templateValues();
      const name = `http-peer-${runtime}-${Math.random().toString(36).slice(2, 10)}`;
      const peer = await adminJson("/api/federation/peers", { name });
      const grant = await adminJson("/api/federation/grants", {
        peerId: peer.id,
        scopes: ["orders:read"],
      });
      const token = await adminJson("/api/federation/enrollment/tokens", { grantId: grant.id });
      return templateValues({
        token: token.token,
        peerName: name,
        peerId: peer.id,
        grantId: grant.id,
      });
    }

    for (const folder of ["redeem", "admin"]) {
      for (const { file, cases } of loadCorpus<CorpusCase>(folder)) {
        for (const c of cases.filter((item) => item.http)) {
          test(`${file}: ${c.name}`, async () => {
            const values = await valuesFor(c);
            const body = caseBody(c, values);
            const headers = caseHeaders(c, body);
            if (folder === "admin") headers.authorization = `Bearer ${adminToken}`;
            const method = c.method ?? "POST";
            const target = fill(c.path, values);
            const answer = await httpsRequest(client, method, target, headers, body, c.stream);
            expectProblem({ ...answer, contentType: answer.headers["content-type"] }, c.expect);
          });
        }
      }
    }

    for (const { file, cases } of loadCorpus<RawCase>("http")) {
      for (const c of cases) {
        test(`${file}: ${c.name}`, async () => {
          const expected = c[runtime] ?? c.expect;
          const answer = await rawExchange(client, rawRequest(c));
          if (expected.code) {
            expectProblem({ ...answer, contentType: answer.headers["content-type"] }, expected);
          } else {
            // The runtime's parser rejects these before the application runs, so the body is
            // the runtime's own and only the status is checked.
            expect(answer.status).toBe(expected.status);
          }
        });
      }
    }

    test("service survives the corpus", async () => {
      const health = await httpsRequest(client, "GET", "/healthz", {});
      expect(health.status).toBe(200);
      expect(service.child.exitCode).toBeNull();
      expect(service.output.join("\n")).not.toContain('"level":50');
    });
  });
}

/** Builds the request bytes of a raw case, with a Content-Length that may lie. */
function rawRequest(c: RawCase): Buffer {
  const target = c.targetBase64
    ? Buffer.from(c.targetBase64, "base64")
    : Buffer.from(c.target ?? "/");
  let body = Buffer.from(c.text ?? "");
  const lines = ["Host: localhost", "Content-Type: application/json", "Connection: close"];
  if (c.contentLength !== undefined) lines.push(`Content-Length: ${c.contentLength}`);
  if (c.chunked) {
    lines.push("Transfer-Encoding: chunked");
    body = Buffer.concat([
      Buffer.from(`${body.byteLength.toString(16)}\r\n`),
      body,
      Buffer.from("\r\n0\r\n\r\n"),
    ]);
  } else if (c.contentLength === undefined) {
    lines.push(`Content-Length: ${body.byteLength}`);
  }
  return Buffer.concat([
    Buffer.from("POST "),
    target,
    Buffer.from(` HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`),
    body,
  ]);
}
