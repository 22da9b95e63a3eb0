// The service's listener as a child process under Bun and Node: HTTPS from the built-in CA by
// default, HTTPS from TLS_CERT_FILE and TLS_KEY_FILE, plain HTTP with TLS=off, and renewal of the
// built-in CA's server certificate while the process keeps running.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect } from "node:tls";
import { promisify } from "node:util";
import { certificateFingerprint } from "../src/ca/fingerprint.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import {
  httpsCall,
  servedCertificate,
  serviceAdmin,
  startTestService,
  type TestService,
  waitFor,
} from "./support/service-admin.ts";
import type { Runtime } from "./support/service-process.ts";

const execFileAsync = promisify(execFile);
const RUNTIMES: Runtime[] = ["bun", "node"];
/** Starting a service includes migrating its database, which is slow on a busy machine. */
const START_TIMEOUT_MS = 150_000;
/** The shortest lifetime TLS_CERT_LIFETIME_SECONDS allows; renewal comes after 40 s of it. */
const SHORT_LIFETIME_SECONDS = 60;

let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "fe-https-"));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Resolves with the TLS error of a handshake attempt on 127.0.0.1:`port`, or undefined. */
function handshakeError(port: number): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on("error", resolve);
  });
}

async function selfSignedCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(dir, "tls-cert.pem");
  const keyFile = path.join(dir, "tls-key.pem");
  await execFileAsync("openssl", [
    ..."req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1".split(" "),
    ..."-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1".split(" "),
    ...["-keyout", keyFile, "-out", certFile],
  ]);
  return { certFile, keyFile };
}

for (const runtime of RUNTIMES) {
  describe(`listener under ${runtime}`, () => {
    // One service on the built-in CA with the shortest certificate lifetime, so that it renews
    // while the other tests of this group run.
    let builtin: TestService;
    let firstServed: X509Certificate;

    beforeAll(async () => {
      builtin = await startTestService(runtime, {
        PUBLIC_URL: "https://enroll.example.test:8443",
        TLS_CERT_LIFETIME_SECONDS: String(SHORT_LIFETIME_SECONDS),
      });
      firstServed = await servedCertificate(builtin.service.port);
    }, START_TIMEOUT_MS);

    afterAll(async () => {
      await builtin?.stop();
    });

    test("serves HTTPS from the built-in CA", async () => {
      const { service } = builtin;
      expect(service.url).toStartWith("https://127.0.0.1:");

      const served = await servedCertificate(service.port);
      const names = served.subjectAltName?.split(", ") ?? [];
      expect(names).toContain("DNS:enroll.example.test");
      expect(names).toContain("DNS:localhost");
      expect(names).toContain("IP Address:127.0.0.1");

      const roots = await httpsCall(`${service.url}/api/federation/ca/roots`);
      expect(roots.headers["content-type"]).toBe("application/x-pem-file");
      expect(certificateFingerprint(roots.body)).toBe(service.caFingerprint);

      const health = await httpsCall(`${service.url}/healthz`, {
        ca: roots.body,
        servername: "localhost",
      });
      expect(health.status).toBe(200);

      const admin = await serviceAdmin(service);
      const enrollment = await admin.createEnrollment();
      expect(enrollment.caFingerprint).toBe(service.caFingerprint);
    });

    test(
      "serves HTTPS from TLS files",
      async () => {
        const dir = await mkdtemp(path.join(workDir, "tls-"));
        const { certFile, keyFile } = await selfSignedCertificate(dir);
        const started = await startTestService(runtime, {
          TLS_CERT_FILE: certFile,
          TLS_KEY_FILE: keyFile,
        });
        try {
          const { service } = started;
          const certPem = await readFile(certFile, "utf8");
          const served = await servedCertificate(service.port);
          expect(served.fingerprint256).toBe(new X509Certificate(certPem).fingerprint256);

          const health = await httpsCall(`${service.url}/healthz`, { ca: certPem });
          expect(health.status).toBe(200);
        } finally {
          await started.stop();
        }
      },
      START_TIMEOUT_MS,
    );

    test(
      "serves plain HTTP with TLS=off",
      async () => {
        const started = await startTestService(runtime, { TLS: "off" });
        try {
          const { service } = started;
          expect(service.url).toStartWith("http://127.0.0.1:");
          const health = await fetch(`${service.url}/healthz`);
          expect(health.status).toBe(200);
          expect(await handshakeError(service.port)).toBeInstanceOf(Error);
        } finally {
          await started.stop();
        }
      },
      START_TIMEOUT_MS,
    );

    // Last in the group: renewal comes 40 s after the service started, mostly during the tests above.
    test(
      "renews the certificate without a restart",
      async () => {
        const { service } = builtin;
        const secondsLeft = (Date.parse(firstServed.validTo) - Date.now()) / 1000;
        expect(secondsLeft).toBeLessThanOrEqual(SHORT_LIFETIME_SECONDS);

        await waitFor(
          async () =>
            (await servedCertificate(service.port)).serialNumber !== firstServed.serialNumber,
          "a renewed server certificate",
          SHORT_LIFETIME_SECONDS * 1000,
          1000,
        );
        // Every new connection gets the renewed certificate: no listener serves the old one.
        const serials = new Set<string>();
        for (let i = 0; i < 5; i++) {
          serials.add((await servedCertificate(service.port)).serialNumber);
        }
        expect(serials.size).toBe(1);
        expect(serials.has(firstServed.serialNumber)).toBe(false);

        const renewed = await servedCertificate(service.port);
        expect(Date.parse(renewed.validTo)).toBeGreaterThan(Date.parse(firstServed.validTo));
        const roots = await httpsCall(`${service.url}/api/federation/ca/roots`);
        const health = await httpsCall(`${service.url}/healthz`, {
          ca: roots.body,
          servername: "localhost",
        });
        expect(health.status).toBe(200);
        const renewals = service.logs().filter((line) => line.msg === "server certificate renewed");
        expect(renewals.length).toBeGreaterThan(0);
        expect(service.child.exitCode).toBeNull();
      },
      START_TIMEOUT_MS,
    );
  });
}

describe("TLS_CERT_LIFETIME_SECONDS", () => {
  test("rejects a lifetime under 60 s", () => {
    expect(() => loadConfig({ TLS_CERT_LIFETIME_SECONDS: "30" })).toThrow(ConfigError);
  });

  test("defaults to seven days", () => {
    expect(loadConfig({}).TLS_CERT_LIFETIME_SECONDS).toBe(7 * 24 * 3600);
  });
});
