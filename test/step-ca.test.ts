// Checks the step-ca harness and the federation client template against a real step-ca 0.19.
// The status codes and messages asserted here are the ones step-ca 0.19 returns.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { importJWK, SignJWT } from "jose";
import { locateStepCa, requestJson, type StepCaInstance, startStepCa } from "./support/step-ca.ts";

const execFileAsync = promisify(execFile);

// Test-only OIDs under enterprise number 32473, which RFC 5612 reserves for documentation.
const grantIdOid = "1.3.6.1.4.1.32473.1.1";
const peerIdOid = "1.3.6.1.4.1.32473.1.2";
const unauthorizedMessage =
  "The request lacked necessary authorization to be completed. " +
  "Please see the certificate authority logs for more info.";

const located = await locateStepCa();
if ("skip" in located) console.warn(`skipping step-ca tests: ${located.skip}`);

interface SignResponse {
  crt: string;
  ca: string;
  certChain: string[];
}

interface Issued {
  pem: string;
  keyPem: string;
  peerId: string;
  grantId: string;
}

/** DER encoding of an ASN.1 UTF8String, base64 encoded as the template's claim expects. */
function utf8StringDer(value: string): string {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > 127) throw new Error("test values must fit a short-form DER length");
  return Buffer.concat([Buffer.from([0x0c, bytes.length]), bytes]).toString("base64");
}

describe.skipIf("skip" in located)("step-ca 0.19", () => {
  let ca: StepCaInstance;
  let workDir: string;
  let signingKey: CryptoKey;
  let kid: string;

  beforeAll(async () => {
    ca = await startStepCa({ maxCertDurationSeconds: 3600, defaultCertDurationSeconds: 900 });
    workDir = await mkdtemp(join(tmpdir(), "step-ca-test-"));
    const jwk = JSON.parse(await readFile(ca.provisionerKeyPath, "utf8"));
    kid = jwk.kid;
    signingKey = (await importJWK(jwk, "ES256")) as CryptoKey;
  });

  afterAll(async () => {
    await ca?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function mintToken(audiencePath: string, claims: Record<string, unknown>) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sha: ca.rootFingerprint, ...claims })
      .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
      .setIssuer(ca.provisionerName)
      .setAudience(`${ca.url}${audiencePath}`)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .sign(signingKey);
  }

  function mintSignToken(peerId: string, grantId: string, oids = [grantIdOid, peerIdOid]) {
    return mintToken("/1.0/sign", {
      sub: "peer-a",
      sans: [`urn:uuid:${peerId}`],
      federation: {
        extensions: [
          { id: oids[0], value: utf8StringDer(grantId) },
          { id: oids[1], value: utf8StringDer(peerId) },
        ],
      },
    });
  }

  async function makeCsr(commonName: string): Promise<{ csr: string; keyPem: string }> {
    const name = randomUUID();
    const keyPath = join(workDir, `${name}.key`);
    const csrPath = join(workDir, `${name}.csr`);
    await execFileAsync("openssl", [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-noenc",
      "-subj",
      `/CN=${commonName}`,
      "-keyout",
      keyPath,
      "-out",
      csrPath,
    ]);
    return { csr: await readFile(csrPath, "utf8"), keyPem: await readFile(keyPath, "utf8") };
  }

  function post(path: string, body: unknown, client?: { cert: string; key: string }) {
    return requestJson(`${ca.url}${path}`, { ca: ca.rootPem, method: "POST", body, ...client });
  }

  async function issue(extraBody: Record<string, unknown> = {}): Promise<Issued> {
    const peerId = randomUUID();
    const grantId = randomUUID();
    const { csr, keyPem } = await makeCsr("peer-a");
    const ott = await mintSignToken(peerId, grantId);
    const response = await post("/1.0/sign", { csr, ott, ...extraBody });
    expect(response.status).toBe(201);
    return { pem: (response.body as SignResponse).crt, keyPem, peerId, grantId };
  }

  test("sign issues verifiable client certificate", async () => {
    const peerId = randomUUID();
    const grantId = randomUUID();
    const { csr } = await makeCsr("peer-a");
    const response = await post("/1.0/sign", { csr, ott: await mintSignToken(peerId, grantId) });
    expect(response.status).toBe(201);
    const body = response.body as SignResponse;
    expect(body.certChain).toHaveLength(2);
    expect(body.ca.trim()).toBe(ca.intermediatePem.trim());

    const leafPath = join(workDir, "leaf.pem");
    const intermediatePath = join(workDir, "intermediate.pem");
    await writeFile(leafPath, body.crt);
    await writeFile(intermediatePath, ca.intermediatePem);
    const verify = await execFileAsync("openssl", [
      "verify",
      "-CAfile",
      ca.rootPath,
      "-untrusted",
      intermediatePath,
      "-purpose",
      "sslclient",
      leafPath,
    ]);
    expect(verify.stdout.trim()).toBe(`${leafPath}: OK`);

    const cert = new x509.X509Certificate(body.crt);
    expect(cert.subject).toBe("CN=peer-a");
    const sans = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(sans?.names.toJSON()).toEqual([{ type: "url", value: `urn:uuid:${peerId}` }]);
    const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
    expect(keyUsage?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const extKeyUsage = cert.getExtension(x509.ExtendedKeyUsageExtension);
    expect(extKeyUsage?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);

    for (const [oid, value] of [
      [grantIdOid, grantId],
      [peerIdOid, peerId],
    ] as const) {
      const extension = cert.getExtension(oid);
      expect(extension?.critical).toBe(false);
      expect(Buffer.from(extension?.value ?? new ArrayBuffer(0)).toString("base64")).toBe(
        utf8StringDer(value),
      );
    }
  });

  test("sign rejects reused token", async () => {
    const { csr } = await makeCsr("peer-a");
    const ott = await mintSignToken(randomUUID(), randomUUID());
    expect((await post("/1.0/sign", { csr, ott })).status).toBe(201);

    const reused = await post("/1.0/sign", { csr, ott });
    expect(reused).toEqual({ status: 401, body: { status: 401, message: unauthorizedMessage } });
  });

  test("sign rejects OID arc above 2^31", async () => {
    // step-ca 0.19 parses template OIDs into Go ints and then Go 1.19's certificate parser
    // rejects any arc of 2^31 or more, so a 2.25.<UUID> arc cannot be issued.
    const arc = "2.25.233985178254312342613727431963563498871";
    const { csr } = await makeCsr("peer-a");
    const ott = await mintSignToken(randomUUID(), randomUUID(), [`${arc}.1`, `${arc}.2`]);
    const response = await post("/1.0/sign", { csr, ott });
    expect(response).toEqual({
      status: 500,
      body: { status: 500, message: "error applying certificate template" },
    });
  });

  test("sign limits lifetime to provisioner max", async () => {
    // step-ca backdates notBefore by one minute and allows max + backdate; it rejects longer
    // requests with 403 instead of shortening them.
    const { csr } = await makeCsr("peer-a");
    const tooLong = await post("/1.0/sign", {
      csr,
      ott: await mintSignToken(randomUUID(), randomUUID()),
      notAfter: "2h",
    });
    expect(tooLong.status).toBe(403);
    expect((tooLong.body as { message: string }).message).toBe(
      "The request was forbidden by the certificate authority: requested duration of 2h1m0s " +
        "is more than the authorized maximum certificate duration of 1h1m0s.",
    );

    const atMax = await issue({ notAfter: "1h" });
    const cert = new x509.X509Certificate(atMax.pem);
    const lifetimeSeconds = (cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000;
    expect(lifetimeSeconds).toBe(3600 + 60);
  });

  test("revoked certificate cannot renew", async () => {
    const issued = await issue();
    const client = { cert: issued.pem, key: issued.keyPem };
    const renewed = await post("/1.0/renew", undefined, client);
    expect(renewed.status).toBe(201);

    // step-ca stores revocations under the decimal serial, which renew looks up.
    const serial = BigInt(`0x${new x509.X509Certificate(issued.pem).serialNumber}`).toString(10);
    const revokeToken = await mintToken("/1.0/revoke", { sub: serial });
    const revoked = await post("/1.0/revoke", {
      serial,
      ott: revokeToken,
      reasonCode: 1,
      reason: "key compromise",
      passive: true,
    });
    expect(revoked).toEqual({ status: 200, body: { status: "ok" } });

    const renewAfterRevoke = await post("/1.0/renew", undefined, client);
    expect(renewAfterRevoke).toEqual({
      status: 401,
      body: { status: 401, message: unauthorizedMessage },
    });
  });

  test("sign works after restart", async () => {
    await ca.restart();
    const issued = await issue();
    expect(new x509.X509Certificate(issued.pem).subject).toBe("CN=peer-a");
  });
});
