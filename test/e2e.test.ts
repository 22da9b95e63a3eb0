// End to end against the real service over HTTPS, started under Bun and under Node. The admin
// creates a peer, a grant and a token. The peer redeems the token with an openssl CSR, and
// openssl verifies the certificate against the root that the response carries.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { Database } from "../src/db/connect.ts";
import { signAdminToken } from "../src/server/admin-secret.ts";
import { opensslCsr } from "./support/csr.ts";
import { createTestDatabase, usingPostgres } from "./support/database.ts";
import { type Runtime, type ServiceProcess, startService } from "./support/service-process.ts";

const execFileAsync = promisify(execFile);
const ADMIN_SECRET = "e2e-test-admin-secret-0123456789abcdef01234";

describe.each(["bun", "node"] as Runtime[])("service under %s", (runtime) => {
  let database: Database | undefined;
  let service: ServiceProcess;
  let rootPem: string;
  let jwt: string;
  let workDir: string;

  beforeAll(async () => {
    database = usingPostgres ? await createTestDatabase({ poolMax: 1 }) : undefined;
    service = await startService({
      runtime,
      env: { ADMIN_JWT_SECRET: ADMIN_SECRET, ...(database ? { DATABASE_URL: database.url } : {}) },
    });
    rootPem = await readFile(path.join(service.dataDir, "ca/root.crt"), "utf8");
    jwt = await signAdminToken({
      secret: ADMIN_SECRET,
      subject: "e2e",
      scope: "federation:admin",
      ttlSeconds: 600,
    });
    workDir = await mkdtemp(path.join(tmpdir(), "fe-e2e-"));
  });

  afterAll(async () => {
    await service?.cleanup();
    await database?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** Sends JSON over HTTPS, trusting only the service's own root. */
  function send(method: string, url: string, body?: unknown, admin = true): Promise<Response> {
    return fetch(`${service.url}${url}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(admin ? { authorization: `Bearer ${jwt}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      tls: { ca: rootPem },
    } as RequestInit);
  }

  async function created(response: Response) {
    expect(response.status).toBe(201);
    return response.json();
  }

  test("enrolls a peer with an openssl CSR", async () => {
    const name = `e2e-${runtime}.example.org`;
    const peer = await created(await send("POST", "/api/federation/peers", { name }));
    const grant = await created(
      await send("POST", "/api/federation/grants", { peerId: peer.id, scopes: ["orders:read"] }),
    );
    const token = await created(
      await send("POST", "/api/federation/enrollment/tokens", { grantId: grant.id }),
    );
    expect(token.caFingerprint).toBe(service.caFingerprint);

    const { csrPem } = await opensslCsr(name);
    const redeemPath = `/api/federation/enrollment/${token.token}`;
    const redeemed = await send("POST", redeemPath, { csr: csrPem }, false);
    expect(redeemed.status).toBe(201);
    const body = await redeemed.json();

    const files = {
      cert: path.join(workDir, `${runtime}-cert.pem`),
      chain: path.join(workDir, `${runtime}-chain.pem`),
      root: path.join(workDir, `${runtime}-root.pem`),
    };
    await writeFile(files.cert, body.certificate);
    await writeFile(files.chain, body.certificateChain);
    await writeFile(files.root, body.caCertificates);
    const { stdout } = await execFileAsync("openssl", [
      "verify",
      "-CAfile",
      files.root,
      "-untrusted",
      files.chain,
      files.cert,
    ]);
    expect(stdout.trim()).toBe(`${files.cert}: OK`);
    expect(body.grant).toEqual({ id: grant.id, scopes: ["orders:read"] });

    const again = await send("POST", redeemPath, { csr: (await opensslCsr(name)).csrPem }, false);
    expect(again.status).toBe(410);
    const state = await (await send("GET", `/api/federation/grants/${grant.id}`)).json();
    expect(state.status).toBe("active");

    // The child's own log: one line per request, with the route pattern and never the token.
    const output = service.output.join("\n");
    expect(output).not.toContain(token.token);
    const redeemLines = service
      .logs()
      .filter(
        (line) => line.msg === "request" && line.route === "/api/federation/enrollment/:token",
      );
    expect(redeemLines.map((line) => line.status)).toEqual([201, 410]);
    expect(redeemLines.map((line) => line.outcome)).toEqual(["issued", "gone"]);
  });

  test("serves metrics and the API document", async () => {
    const metrics = await send("GET", "/metrics", undefined, false);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('federation_db_pool_connections{state="idle"}');
    expect(text).toContain("process_cpu_seconds_total");
    const document = await send("GET", "/openapi.json", undefined, false);
    expect((await document.json()).openapi).toBe("3.1.0");
  });
});
