// Enrollment through the service with a real step-ca 0.19 as the CA: the repository's template on
// a JWK provisioner, the service's step-ca client, and the whole redeem path. Also how each way a
// step-ca call can fail reaches the peer, a step-ca restart, and grant revocation at step-ca.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { randomUUID, webcrypto } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { exportJWK, generateKeyPair } from "jose";
import pino from "pino";
import { createApp } from "../src/app.ts";
import type { CertificateAuthority } from "../src/ca/authority.ts";
import { decodeUtf8String, encodeUtf8String, identityOids } from "../src/ca/identity-extensions.ts";
import { importProvisionerKey, signOtt } from "../src/ca/step-ca/ott.ts";
import { StepCa } from "../src/ca/step-ca/step-ca.ts";
import { loadConfig } from "../src/config.ts";
import { retryDueRevocations } from "../src/jobs/revocation-retrier.ts";
import { certRevocationSettings, revokeGrant } from "../src/repository/revoke-grant.ts";
import { opensslCsr } from "./support/csr.ts";
import { startDroppingProxy } from "./support/dropping-proxy.ts";
import { startFakeStepCa } from "./support/fake-step-ca.ts";
import { createTestContext, TEST_ADMIN_SECRET, type TestContext } from "./support/harness.ts";
import { locateStepCa, requestJson, type StepCaInstance, startStepCa } from "./support/step-ca.ts";

const execFileAsync = promisify(execFile);

// Under enterprise number 32473, which RFC 5612 reserves for documentation; every arc is below
// 2^31, as step-ca 0.19 requires.
const OID_ARC = "1.3.6.1.4.1.32473.7";
const CERT_TTL_SECONDS = 7200;
/** step-ca backdates notBefore by one minute. */
const STEP_CA_BACKDATE_SECONDS = 60;

const located = await locateStepCa();
if ("skip" in located) console.warn(`skipping step-ca enrollment tests: ${located.skip}`);

async function provisionerKeyOf(instance: StepCaInstance) {
  return JSON.parse(await readFile(instance.provisionerKeyPath, "utf8"));
}

async function stepCaClient(
  instance: StepCaInstance,
  overrides: { url?: string; provisionerKey?: Record<string, unknown> } = {},
): Promise<StepCa> {
  return StepCa.open({
    url: overrides.url ?? instance.url,
    rootPem: instance.rootPem,
    provisionerName: instance.provisionerName,
    provisionerKey: overrides.provisionerKey ?? (await provisionerKeyOf(instance)),
    oidArc: OID_ARC,
  });
}

describe.skipIf("skip" in located)("enrollment with step-ca", () => {
  let stepCa: StepCaInstance;
  let client: StepCa;
  let ctx: TestContext;
  let dir: string;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    // Provisioner limits: 5 minutes to 24 hours, step-ca's defaults.
    stepCa = await startStepCa();
    client = await stepCaClient(stepCa);
    ctx = await createTestContext({
      ca: () => client,
      env: { CERT_OID_ARC: OID_ARC, CERT_TTL_SECONDS: String(CERT_TTL_SECONDS) },
    });
    dir = await mkdtemp(path.join(tmpdir(), "fe-step-ca-enroll-"));
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    await ctx?.close();
    await client?.close();
    await stepCa?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Another app on the same database, with its own CA and settings. */
  function appWith(ca: CertificateAuthority, env: Record<string, string> = {}) {
    const lines: string[] = [];
    const logger = pino(
      { level: "debug" },
      new Writable({
        write(chunk, _encoding, callback) {
          lines.push(chunk.toString());
          callback();
        },
      }),
    );
    const config = loadConfig({
      DATA_DIR: dir,
      PUBLIC_URL: "https://enroll.test",
      ADMIN_JWT_SECRET: TEST_ADMIN_SECRET,
      REDEEM_RATE_LIMIT: "100000",
      CERT_OID_ARC: OID_ARC,
      CERT_TTL_SECONDS: String(CERT_TTL_SECONDS),
      ...env,
    });
    const app = createApp({
      config,
      sql: ctx.sql,
      ca,
      logger,
      adminKeys: { kind: "secret", secret: TEST_ADMIN_SECRET },
      clientIp: () => "127.0.0.1",
    });
    return {
      logText: () => lines.join(""),
      redeem: (token: string, csr: string) =>
        app.request(`/api/federation/enrollment/${token}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ csr }),
        }),
    };
  }

  async function openssl(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync("openssl", args);
    return stdout;
  }

  async function file(name: string, content: string): Promise<string> {
    const filePath = path.join(dir, `${randomUUID()}-${name}`);
    await writeFile(filePath, content);
    return filePath;
  }

  /** Enrolls through the main app with a key made by openssl; keeps the key for mTLS. */
  async function enroll(target = ctx) {
    const enrollment = await target.enrollment();
    const { keyPem, csrPem } = await opensslCsr(enrollment.peer.name);
    const requestedAt = Date.now();
    const response = await target.redeem(enrollment.token, csrPem);
    const body = await response.json();
    expect({ status: response.status, body }).toMatchObject({ status: 201 });
    return { enrollment, keyPem, body, requestedAt };
  }

  function renew(certificate: string, keyPem: string) {
    return requestJson(`${stepCa.url}/1.0/renew`, {
      ca: stepCa.rootPem,
      method: "POST",
      cert: certificate,
      key: keyPem,
    });
  }

  describe("issuance", () => {
    test("issues a certificate that chains to step-ca's root and names the peer", async () => {
      const { enrollment, body, requestedAt } = await enroll();
      expect(body.caCertificates.trim()).toBe(stepCa.rootPem.trim());

      const certFile = await file("cert.pem", body.certificate);
      const chainFile = await file("chain.pem", body.certificateChain);
      const rootFile = await file("root.pem", body.caCertificates);
      const verified = await openssl(
        "verify",
        "-CAfile",
        rootFile,
        "-untrusted",
        chainFile,
        "-purpose",
        "sslclient",
        certFile,
      );
      expect(verified.trim()).toBe(`${certFile}: OK`);
      // And against step-ca's own root file, not only the one the service handed out.
      const direct = await openssl(
        "verify",
        "-CAfile",
        stepCa.rootPath,
        "-untrusted",
        chainFile,
        certFile,
      );
      expect(direct.trim()).toBe(`${certFile}: OK`);

      const certificate = new x509.X509Certificate(body.certificate);
      expect(certificate.issuer).toBe(new x509.X509Certificate(stepCa.intermediatePem).subject);
      expect(certificate.subject).toBe(`CN=${enrollment.peer.name}`);
      const sans = certificate.getExtension(x509.SubjectAlternativeNameExtension);
      expect(sans?.names.toJSON()).toEqual([
        { type: "url", value: `urn:uuid:${enrollment.peer.id}` },
      ]);
      const oids = identityOids(OID_ARC);
      // Each a non-critical extension whose value is a DER UTF8String.
      const extension = (oid: string) => {
        const found = certificate.getExtension(oid);
        return {
          critical: found?.critical,
          value: found ? decodeUtf8String(new Uint8Array(found.value)) : undefined,
        };
      };
      expect(extension(oids.grant)).toEqual({ critical: false, value: enrollment.grant.id });
      expect(extension(oids.peer)).toEqual({ critical: false, value: enrollment.peer.id });
      const text = await openssl("x509", "-in", certFile, "-noout", "-text");
      expect(text).toContain(`${OID_ARC}.1:`);
      expect(text).toContain(`${OID_ARC}.2:`);
      expect(text).toContain("TLS Web Client Authentication");

      // The configured lifetime, counted from the request, and step-ca's one-minute backdate.
      const lifetime = (certificate.notAfter.getTime() - requestedAt) / 1000;
      expect(lifetime).toBeGreaterThan(CERT_TTL_SECONDS - 5);
      expect(lifetime).toBeLessThanOrEqual(CERT_TTL_SECONDS + 1);
      const total = (certificate.notAfter.getTime() - certificate.notBefore.getTime()) / 1000;
      expect(Math.abs(total - (CERT_TTL_SECONDS + STEP_CA_BACKDATE_SECONDS))).toBeLessThan(5);

      expect(body.serialNumber).toBe(certificate.serialNumber.toLowerCase().replace(/^(00)+/, ""));
      const peer = await (
        await ctx.send("GET", `/api/federation/peers/${enrollment.peer.id}`)
      ).json();
      expect(peer.certSerial).toBe(body.serialNumber);
      const grant = await (
        await ctx.send("GET", `/api/federation/grants/${enrollment.grant.id}`)
      ).json();
      expect(grant.status).toBe("active");
    });

    test("clamps the lifetime to the provisioner's maximum and minimum", async () => {
      const short = await startStepCa({ maxCertDurationSeconds: 1800 });
      closers.push(() => short.stop());
      const shortClient = await stepCaClient(short);
      closers.push(() => shortClient.close());
      const tooLong = appWith(shortClient, { CERT_TTL_SECONDS: String(CERT_TTL_SECONDS) });
      const enrollment = await ctx.enrollment();
      const { csrPem } = await opensslCsr(enrollment.peer.name);
      const requestedAt = Date.now();
      const response = await tooLong.redeem(enrollment.token, csrPem);
      expect(response.status).toBe(201);
      const lifetime = (Date.parse((await response.json()).notAfter) - requestedAt) / 1000;
      // 1800 s, not the configured 7200 s.
      expect(lifetime).toBeGreaterThan(1800 - 5);
      expect(lifetime).toBeLessThanOrEqual(1800 + 1);

      // Below the provisioner's 5 minute minimum, the minimum.
      const minClient = await stepCaClient(stepCa);
      closers.push(() => minClient.close());
      const tooShort = appWith(minClient, { CERT_TTL_SECONDS: "60" });
      const other = await ctx.enrollment();
      const csr = await opensslCsr(other.peer.name);
      const before = Date.now();
      const shortResponse = await tooShort.redeem(other.token, csr.csrPem);
      expect(shortResponse.status).toBe(201);
      const minLifetime = (Date.parse((await shortResponse.json()).notAfter) - before) / 1000;
      expect(minLifetime).toBeGreaterThan(300 - 5);
      expect(minLifetime).toBeLessThanOrEqual(300 + 1);
    });

    test("step-ca refuses a one-time token of the client's making that was already used", async () => {
      const key = await importProvisionerKey(await provisionerKeyOf(stepCa));
      const peerId = randomUUID();
      const oids = identityOids(OID_ARC);
      const audience = `${stepCa.url}/1.0/sign`;
      const ott = await signOtt(key, {
        issuer: stepCa.provisionerName,
        subject: "peer-replay",
        audience,
        rootFingerprint: stepCa.rootFingerprint,
        sans: [`urn:uuid:${peerId}`],
        extra: {
          federation: {
            extensions: [
              { id: oids.grant, value: encodeUtf8String(randomUUID()).toString("base64") },
              { id: oids.peer, value: encodeUtf8String(peerId).toString("base64") },
            ],
          },
        },
      });
      const { csrPem } = await opensslCsr("peer-replay");
      const post = () =>
        requestJson(audience, { ca: stepCa.rootPem, method: "POST", body: { csr: csrPem, ott } });
      expect((await post()).status).toBe(201);
      const replayed = await post();
      expect(replayed.status).toBe(401);
    });

    test("the CRL route has nothing to serve with step-ca", async () => {
      const response = await ctx.send("GET", "/api/federation/crl", undefined, { auth: false });
      expect(response.status).toBe(404);
      expect((await response.json()).code).toBe("not_found");
    });
  });

  describe("step-ca failures as the peer sees them", () => {
    async function expectProblem(
      target: ReturnType<typeof appWith>,
      csrFor: (peerName: string) => Promise<string>,
      expected: { status: number; code: string; upstream: RegExp },
    ) {
      const enrollment = await ctx.enrollment();
      const response = await target.redeem(enrollment.token, await csrFor(enrollment.peer.name));
      const text = await response.text();
      expect({ status: response.status, code: JSON.parse(text).code }).toEqual({
        status: expected.status,
        code: expected.code,
      });
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      // step-ca's own words reach the log, never the peer.
      expect(text).not.toMatch(expected.upstream);
      expect(text).not.toMatch(/step-ca/i);
      expect(target.logText()).toMatch(expected.upstream);
      // The token stays usable: the failure is counted and recorded.
      const [token] = await ctx.sql<{ failedAttempts: number; usedAt: Date | null }[]>`
        select failed_attempts, used_at from federation_enrollment_tokens
        where id = ${enrollment.tokenId}
      `;
      expect(token).toEqual({ failedAttempts: 1, usedAt: null });
      const audit = await (
        await ctx.send("GET", `/api/federation/audit?resourceId=${enrollment.tokenId}`)
      ).json();
      const failure = audit.items.find(
        (row: { verb: string; outcome: string }) =>
          row.verb === "enrollment.redeem" && row.outcome === "failure",
      );
      expect(failure?.detail.reason).toBe(expected.code);
      expect(failure?.statusCode).toBe(expected.status);
    }

    const plainCsr = async (name: string) => (await opensslCsr(name)).csrPem;

    test("401 from step-ca (a provisioner key with the right kid but another key) is 502 ca_rejected", async () => {
      const real = await provisionerKeyOf(stepCa);
      const { privateKey } = await generateKeyPair("ES256", { extractable: true });
      const impostor = { ...(await exportJWK(privateKey)), kid: real.kid, alg: "ES256" };
      const wrongKey = await stepCaClient(stepCa, { provisionerKey: impostor });
      closers.push(() => wrongKey.close());
      await expectProblem(appWith(wrongKey), plainCsr, {
        status: 502,
        code: "ca_rejected",
        upstream: /lacked necessary authorization/,
      });
    });

    test("403 from step-ca (a lifetime above an authority-wide limit) is 502 ca_rejected", async () => {
      // The limit is set for the whole authority, so the provisioner listing does not show it and
      // the client asks for the configured 7200 s.
      const strict = await startStepCa({ maxCertDurationSeconds: 3600, claimsAt: "authority" });
      closers.push(() => strict.stop());
      const strictClient = await stepCaClient(strict);
      closers.push(() => strictClient.close());
      await expectProblem(appWith(strictClient), plainCsr, {
        status: 502,
        code: "ca_rejected",
        upstream: /forbidden by the certificate authority/,
      });
    });

    test("400 from step-ca (a CSR that Go's parser refuses) is 502 ca_rejected", async () => {
      // An organization name that is a PrintableString with characters PrintableString does not
      // allow: the service's parser accepts the CSR, step-ca's refuses it.
      const csrFor = async (peerName: string) => {
        const keys = (await webcrypto.subtle.generateKey(
          { name: "ECDSA", namedCurve: "P-256" },
          true,
          ["sign", "verify"],
        )) as CryptoKeyPair;
        const csr = await x509.Pkcs10CertificateRequestGenerator.create({
          name: [
            { CN: [peerName] },
            { O: [{ printableString: "not_printable@all" }] },
          ] as x509.JsonNameParams as unknown as x509.JsonName,
          keys,
          signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
        });
        return csr.toString("pem");
      };
      await expectProblem(appWith(client), csrFor, {
        status: 502,
        code: "ca_rejected",
        upstream: /error decoding json/,
      });
    });

    test("500 from step-ca is 502 ca_error and 503 is 503 ca_unavailable", async () => {
      // step-ca cannot be made to answer these for a well-formed request, so the fault stand-in
      // answers them.
      const fake = await startFakeStepCa({ oidArc: OID_ARC });
      closers.push(() => fake.stop());
      const fakeClient = await StepCa.open({
        url: fake.url,
        rootPem: fake.rootPem,
        provisionerName: fake.provisionerName,
        provisionerKey: fake.provisionerKey,
        oidArc: OID_ARC,
      });
      closers.push(() => fakeClient.close());
      const target = appWith(fakeClient);
      fake.mode = { kind: "status", status: 500 };
      await expectProblem(target, plainCsr, {
        status: 502,
        code: "ca_error",
        upstream: /fake failure/,
      });
      fake.mode = { kind: "status", status: 503 };
      await expectProblem(target, plainCsr, {
        status: 503,
        code: "ca_unavailable",
        upstream: /fake failure/,
      });
    });

    test("a step-ca that does not answer in time is 504 ca_timeout", async () => {
      const proxy = await startDroppingProxy(stepCa.url);
      closers.push(() => proxy.close());
      const slowClient = await stepCaClient(stepCa, { url: proxy.url });
      closers.push(() => slowClient.close());
      proxy.hold(true);
      const started = Date.now();
      await expectProblem(appWith(slowClient, { CA_TIMEOUT_SECONDS: "1" }), plainCsr, {
        status: 504,
        code: "ca_timeout",
        upstream: /did not answer/,
      });
      expect(Date.now() - started).toBeLessThan(5000);
    });

    test("an unreachable step-ca is 503 ca_unavailable", async () => {
      const proxy = await startDroppingProxy(stepCa.url);
      closers.push(() => proxy.close());
      const goneClient = await stepCaClient(stepCa, { url: proxy.url });
      closers.push(() => goneClient.close());
      await proxy.refuse();
      await expectProblem(appWith(goneClient), plainCsr, {
        status: 503,
        code: "ca_unavailable",
        upstream: /ECONNREFUSED|ConnectionRefused|unreachable/,
      });
    });
  });

  describe("a step-ca restart", () => {
    test("is survived: the next redeem works", async () => {
      await enroll();
      await stepCa.restart();
      const { body } = await enroll();
      expect(body.caCertificates.trim()).toBe(stepCa.rootPem.trim());
    });

    test("is survived when it silently killed the client's pooled connections", async () => {
      const proxy = await startDroppingProxy(stepCa.url);
      closers.push(() => proxy.close());
      const proxied = await stepCaClient(stepCa, { url: proxy.url });
      closers.push(() => proxied.close());
      const target = appWith(proxied);
      const redeem = async () => {
        const enrollment = await ctx.enrollment();
        const { csrPem } = await opensslCsr(enrollment.peer.name);
        return target.redeem(enrollment.token, csrPem);
      };
      expect((await redeem()).status).toBe(201);
      proxy.dropSilently();
      await stepCa.restart();
      const response = await redeem();
      expect(response.status).toBe(201);
      // The first try met the dead connection and was sent again on a new one.
      expect(proxy.resets).toBe(1);
    });
  });

  describe("revoking a grant", () => {
    test("step-ca then refuses to renew its certificate", async () => {
      // A certificate whose grant stays: step-ca renews it.
      const kept = await enroll();
      const renewedKept = await renew(kept.body.certificate, kept.keyPem);
      expect(renewedKept.status).toBe(201);

      const { enrollment, keyPem, body } = await enroll();
      const response = await ctx.send(
        "POST",
        `/api/federation/grants/${enrollment.grant.id}/revoke`,
        { reason: "keyCompromise" },
      );
      expect(response.status).toBe(200);
      const grant = await response.json();
      expect(grant).toMatchObject({
        status: "revoked",
        revokeReason: "keyCompromise",
        certRevocation: "done",
        certRevocationAttempts: 1,
      });

      const refused = await renew(body.certificate, keyPem);
      expect(refused.status).toBe(401);
      // Revoking again is a no-op that does not call step-ca.
      const again = await ctx.send("POST", `/api/federation/grants/${enrollment.grant.id}/revoke`);
      expect(await again.json()).toEqual(grant);
    });

    test("a revocation step-ca could not take stays pending, and the retrier completes it", async () => {
      const proxy = await startDroppingProxy(stepCa.url);
      closers.push(() => proxy.close());
      const proxied = await stepCaClient(stepCa, { url: proxy.url });
      closers.push(() => proxied.close());
      const { enrollment, keyPem, body } = await enroll();

      await proxy.refuse();
      const deps = {
        sql: ctx.sql,
        ca: proxied,
        logger: pino({ level: "silent" }),
        settings: certRevocationSettings(ctx.config),
      };
      const grant = await revokeGrant(
        deps,
        { grantId: enrollment.grant.id, reason: "privilegeWithdrawn" },
        { actor: "test-admin", requestId: null },
      );
      expect(grant).toMatchObject({
        status: "revoked",
        certRevocation: "pending",
        certRevocationError: "ca_unavailable",
        certRevocationAttempts: 1,
      });
      // Not yet revoked at step-ca: it still renews.
      expect((await renew(body.certificate, keyPem)).status).toBe(201);

      await proxy.resume();
      await ctx.sql`
        update federation_grants set cert_revocation_next_at = now()
        where id = ${enrollment.grant.id}
      `;
      expect(await retryDueRevocations(deps)).toEqual({ attempted: 1, revoked: 1, failed: 0 });
      const done = await (
        await ctx.send("GET", `/api/federation/grants/${enrollment.grant.id}`)
      ).json();
      expect(done.certRevocation).toBe("done");
      expect(done.certRevocationAttempts).toBe(2);
      expect((await renew(body.certificate, keyPem)).status).toBe(401);
    });
  });
});
