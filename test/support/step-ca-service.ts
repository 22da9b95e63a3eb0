// Files and a client for running the service as a child process against the fake step-ca: the
// step-ca root and provisioner key, a self-signed TLS certificate for 127.0.0.1, and fetch calls
// that trust exactly that certificate.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { FakeStepCa } from "./fake-step-ca.ts";
import { TEST_ADMIN_SECRET } from "./harness.ts";
import type { ServiceProcess } from "./service-process.ts";

const execFileAsync = promisify(execFile);

export interface StepCaServiceSetup {
  /** Environment for startService: step-ca, TLS, admin secret and OID arc. */
  env: Record<string, string>;
  /** Sends a request to a service started with `env`, trusting only its certificate. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  /** POSTs a CSR to a service's redeem route. */
  redeem(
    service: ServiceProcess,
    token: string,
    csr: string,
    headers?: Record<string, string>,
  ): Promise<Response>;
  cleanup(): Promise<void>;
}

async function selfSignedCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(dir, "tls.crt");
  const keyFile = path.join(dir, "tls.key");
  await execFileAsync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ]);
  return { certFile, keyFile };
}

export async function stepCaServiceSetup(
  fake: FakeStepCa,
  oidArc: string,
): Promise<StepCaServiceSetup> {
  const dir = await mkdtemp(path.join(tmpdir(), "fe-step-ca-service-"));
  const rootFile = path.join(dir, "step-ca-root.crt");
  const keyFile = path.join(dir, "provisioner.json");
  await writeFile(rootFile, fake.rootPem);
  await writeFile(keyFile, JSON.stringify(fake.provisionerKey), { mode: 0o600 });
  const tls = await selfSignedCertificate(dir);
  const tlsCa = await readFile(tls.certFile, "utf8");

  const fetchTrusted = (url: string, init: RequestInit = {}) =>
    fetch(url, { ...init, tls: { ca: [tlsCa], rejectUnauthorized: true } } as RequestInit);

  return {
    env: {
      STEP_CA_URL: fake.url,
      STEP_CA_ROOT: rootFile,
      STEP_CA_PROVISIONER: fake.provisionerName,
      STEP_CA_PROVISIONER_KEY: keyFile,
      CERT_OID_ARC: oidArc,
      TLS_CERT_FILE: tls.certFile,
      TLS_KEY_FILE: tls.keyFile,
      ADMIN_JWT_SECRET: TEST_ADMIN_SECRET,
    },
    fetch: fetchTrusted,
    redeem(service, token, csr, headers = {}) {
      return fetchTrusted(`${service.url}/api/federation/enrollment/${token}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ csr }),
      });
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
