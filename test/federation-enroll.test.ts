// End-to-end tests of the federation-enroll command: each run is a child process under Bun or
// Node against the real service, itself a child process serving HTTPS from its built-in CA.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer as createHttpsServer } from "node:https";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { generateToken } from "../src/enrollment/token-format.ts";
import { runEnroll } from "./support/enroll-command.ts";
import {
  type CreatedEnrollment,
  redeemStatuses,
  type ServiceAdmin,
  serviceAdmin,
  startTestService,
  type TestService,
  waitFor,
} from "./support/service-admin.ts";
import type { Runtime } from "./support/service-process.ts";
import { startTlsCutProxy } from "./support/tls-cut-proxy.ts";

const execFileAsync = promisify(execFile);
const RUNTIMES: Runtime[] = ["bun", "node"];
/** Starting a service includes migrating its database, which is slow on a busy machine. */
const SETUP_TIMEOUT_MS = 150_000;

let workDir: string;
const running = new Map<Runtime, { started: TestService; admin: ServiceAdmin }>();

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "fe-enroll-"));
  await Promise.all(
    RUNTIMES.map(async (runtime) => {
      const started = await startTestService(runtime, { REDEEM_RATE_LIMIT: "100000" });
      running.set(runtime, { started, admin: await serviceAdmin(started.service) });
    }),
  );
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([...running.values()].map(({ started }) => started.stop()));
  await rm(workDir, { recursive: true, force: true });
});

function serviceFor(runtime: Runtime) {
  const entry = running.get(runtime);
  if (!entry) throw new Error(`no ${runtime} service`);
  return { service: entry.started.service, admin: entry.admin };
}

let outCounter = 0;

/** Returns a new output directory path, which the command creates. */
function freshOut(): string {
  outCounter += 1;
  return path.join(workDir, `out-${outCounter}`);
}

function enrollArgs(url: string, enrollment: CreatedEnrollment, out: string): string[] {
  return [
    "--url",
    url,
    "--token",
    enrollment.token,
    "--fingerprint",
    enrollment.caFingerprint,
    "--out",
    out,
  ];
}

async function openssl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("openssl", args);
  return stdout;
}

/** Creates a self-signed P-256 certificate and key for 127.0.0.1, as TLS files. */
async function selfSignedCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(dir, "tls-cert.pem");
  const keyFile = path.join(dir, "tls-key.pem");
  await openssl(
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
  );
  return { certFile, keyFile };
}

async function serialOf(certFile: string): Promise<string> {
  return new X509Certificate(await readFile(certFile)).serialNumber.toLowerCase();
}

/**
 * Runs `openssl s_server` requiring a client certificate that chains to root.pem, connects with
 * `openssl s_client` presenting cert.pem, key.pem and chain.pem, and returns the server's output.
 * s_client exits 0 even when the server rejects its certificate, so the server output is checked.
 */
async function mutualTlsHandshake(out: string): Promise<string> {
  const { certFile: serverCert, keyFile: serverKey } = await selfSignedCertificate(out);
  // s_server quits when its stdin closes, so stdin stays an open pipe until the handshake is done.
  const server = spawn(
    "openssl",
    [
      "s_server",
      "-accept",
      "127.0.0.1:0",
      "-naccept",
      "1",
      "-cert",
      serverCert,
      "-key",
      serverKey,
      "-Verify",
      "1",
      "-CAfile",
      path.join(out, "root.pem"),
      "-verify_return_error",
    ],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let output = "";
  server.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  server.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => server.on("close", () => resolve()));
  try {
    await waitFor(() => /ACCEPT 127\.0\.0\.1:\d+/.test(output), "s_server to listen");
    const port = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(output)?.[1] as string;
    const client = spawn(
      "openssl",
      [
        "s_client",
        "-connect",
        `127.0.0.1:${port}`,
        "-cert",
        path.join(out, "cert.pem"),
        "-key",
        path.join(out, "key.pem"),
        "-cert_chain",
        path.join(out, "chain.pem"),
        "-CAfile",
        serverCert,
        "-verify_return_error",
        "-brief",
      ],
      { stdio: ["ignore", "ignore", "ignore"] },
    );
    await new Promise<void>((resolve) => client.on("close", () => resolve()));
    await waitFor(() => output.includes("CONNECTION CLOSED"), "s_server to finish");
  } finally {
    server.stdin.end();
    await exited;
  }
  return output;
}

/** Starts a loopback listener that counts connections and closes each at once. */
async function connectionCounter(): Promise<{
  url: string;
  count: () => number;
  close(): Promise<void>;
}> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}`,
    count: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Returns `token` with its last checksum character changed. */
function mistype(token: string): string {
  const last = token.at(-1) === "A" ? "B" : "A";
  return token.slice(0, -1) + last;
}

for (const runtime of RUNTIMES) {
  describe(`federation-enroll under ${runtime}`, () => {
    test("enrolls a peer end to end", async () => {
      const { service, admin } = serviceFor(runtime);
      const enrollment = await admin.createEnrollment();
      const out = freshOut();
      // Upper case with colons, as some tools print fingerprints.
      const fingerprint = enrollment.caFingerprint.toUpperCase().match(/../g)?.join(":") as string;
      const args = enrollArgs(service.url, enrollment, out);
      args[args.indexOf("--fingerprint") + 1] = fingerprint;

      const result = await runEnroll(runtime, args, workDir);
      expect(result.stderr).toBe("");
      expect(result.exitCode).toBe(0);
      const steps = result.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(":")[0]);
      expect(steps).toEqual(["trust", "key", "redeem", "verify", "write"]);

      const file = (name: string) => path.join(out, name);
      const verified = await openssl(
        "verify",
        "-CAfile",
        file("root.pem"),
        "-untrusted",
        file("chain.pem"),
        file("cert.pem"),
      );
      expect(verified.trim()).toBe(`${file("cert.pem")}: OK`);
      const certificateKey = await openssl("x509", "-in", file("cert.pem"), "-noout", "-pubkey");
      const privateKeyPublic = await openssl("pkey", "-in", file("key.pem"), "-pubout");
      expect(certificateKey).toBe(privateKeyPublic);
      expect((await stat(file("key.pem"))).mode & 0o777).toBe(0o600);
      const root = new X509Certificate(await readFile(file("root.pem")));
      expect(root.fingerprint256.replaceAll(":", "").toLowerCase()).toBe(service.caFingerprint);

      const handshake = await mutualTlsHandshake(out);
      expect(handshake).toContain(`subject=CN = ${enrollment.peer.name}`);
      expect(handshake).not.toContain("verify error");
      expect(handshake).toContain("1 server accepts that finished");
    });

    test("stops on a wrong fingerprint", async () => {
      const { service, admin } = serviceFor(runtime);
      const enrollment = await admin.createEnrollment();
      const redeemsBefore = redeemStatuses(service).length;
      const out = freshOut();
      const wrong = { ...enrollment, caFingerprint: "ab".repeat(32) };

      const result = await runEnroll(runtime, enrollArgs(service.url, wrong, out), workDir);
      expect(result.exitCode).toBe(4);
      expect(result.stderr).toContain("the token was not sent");
      expect(await Bun.file(path.join(out, "key.pem")).exists()).toBe(false);

      // The token still redeems. Its redeem is logged after any the failed run could have made.
      const retry = await runEnroll(
        runtime,
        enrollArgs(service.url, enrollment, freshOut()),
        workDir,
      );
      expect(retry.exitCode).toBe(0);
      await waitFor(() => redeemStatuses(service).length > redeemsBefore, "the redeem log line");
      expect(redeemStatuses(service).slice(redeemsBefore)).toEqual([201]);
    });

    test("sends nothing for a mistyped token", async () => {
      const { admin } = serviceFor(runtime);
      const enrollment = await admin.createEnrollment();
      const counter = await connectionCounter();
      try {
        const mistyped = { ...enrollment, token: mistype(enrollment.token) };
        const result = await runEnroll(
          runtime,
          enrollArgs(counter.url, mistyped, freshOut()),
          workDir,
        );
        expect(result.exitCode).toBe(2);
        expect(result.stderr).toContain("the token is mistyped");
        expect(counter.count()).toBe(0);
      } finally {
        await counter.close();
      }
    });

    test("keeps an existing key without --force", async () => {
      const { service, admin } = serviceFor(runtime);
      const enrollment = await admin.createEnrollment();
      const out = freshOut();
      await mkdir(out);
      await writeFile(path.join(out, "key.pem"), "existing key\n");

      const refused = await runEnroll(runtime, enrollArgs(service.url, enrollment, out), workDir);
      expect(refused.exitCode).toBe(3);
      expect(refused.stderr).toContain("pass --force");
      expect(await readFile(path.join(out, "key.pem"), "utf8")).toBe("existing key\n");

      const forced = await runEnroll(
        runtime,
        [...enrollArgs(service.url, enrollment, out), "--force", "--quiet"],
        workDir,
      );
      expect(forced.exitCode).toBe(0);
      expect(forced.stdout).toBe("");
      expect(await readFile(path.join(out, "key.pem"), "utf8")).toContain("BEGIN PRIVATE KEY");
    });

    test("reports a used token", async () => {
      const { service, admin } = serviceFor(runtime);
      const enrollment = await admin.createEnrollment();
      const first = await runEnroll(
        runtime,
        enrollArgs(service.url, enrollment, freshOut()),
        workDir,
      );
      expect(first.exitCode).toBe(0);

      const second = await runEnroll(
        runtime,
        enrollArgs(service.url, enrollment, freshOut()),
        workDir,
      );
      expect(second.exitCode).toBe(5);
      expect(second.stderr).toContain("410");
      expect(second.stderr).toContain("ask the admin for a new token");
    });

    test("retries after a dropped response", async () => {
      const { service, admin } = serviceFor(runtime);
      const enrollment = await admin.createEnrollment();
      const redeemsBefore = redeemStatuses(service).length;
      const proxy = await startTlsCutProxy(service.port);
      const out = freshOut();
      try {
        const result = await runEnroll(runtime, enrollArgs(proxy.url, enrollment, out), workDir);
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toContain("retrying in 1 s with the same key");
        expect(result.stdout).toContain("received again the certificate issued to this key");
      } finally {
        await proxy.close();
      }
      // The first redeem issued the certificate and its response was cut; the retry got a replay.
      await waitFor(
        () => redeemStatuses(service).length >= redeemsBefore + 2,
        "two redeem log lines",
      );
      expect(redeemStatuses(service).slice(redeemsBefore)).toEqual([201, 200]);
      const peer = (await admin.call(
        "GET",
        `/api/federation/peers/${enrollment.peer.id}`,
        undefined,
        200,
      )) as {
        certSerial: string;
      };
      expect(await serialOf(path.join(out, "cert.pem"))).toBe(peer.certSerial);
    });
  });
}

describe("federation-enroll", () => {
  test("reports an unknown token", async () => {
    const { service, admin } = serviceFor("bun");
    const enrollment = await admin.createEnrollment();
    const unknown = { ...enrollment, token: generateToken() };
    const result = await runEnroll("node", enrollArgs(service.url, unknown, freshOut()), workDir);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toContain("does not know this token");
  });

  test("enrolls with each key type", async () => {
    const { service, admin } = serviceFor("node");
    for (const keyType of ["ec-p384", "ed25519", "rsa-3072"]) {
      const enrollment = await admin.createEnrollment();
      const out = freshOut();
      const args = [...enrollArgs(service.url, enrollment, out), "--key-type", keyType];
      const result = await runEnroll("node", args, workDir);
      expect(`${keyType}: ${result.exitCode} ${result.stderr}`).toBe(`${keyType}: 0 `);
      const certificateKey = await openssl(
        "x509",
        "-in",
        path.join(out, "cert.pem"),
        "-noout",
        "-pubkey",
      );
      const privateKeyPublic = await openssl("pkey", "-in", path.join(out, "key.pem"), "-pubout");
      expect(certificateKey).toBe(privateKeyPublic);
    }
  });

  test("prints the exit codes in --help", async () => {
    const result = await runEnroll("bun", ["--help"], workDir);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain("Exit codes:");
    expect(result.stdout).toContain("  5  the token is unknown (404)");
  });

  test("rejects plain http URLs", async () => {
    const { admin } = serviceFor("bun");
    const enrollment = await admin.createEnrollment();
    const result = await runEnroll(
      "bun",
      enrollArgs("http://127.0.0.1:1", enrollment, freshOut()),
      workDir,
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--url must use https");
  });

  test(
    "waits out a 429 with Retry-After",
    async () => {
      const limited = await startTestService("bun", {
        REDEEM_RATE_LIMIT: "1",
        REDEEM_RATE_WINDOW_SECONDS: "5",
      });
      try {
        const admin = await serviceAdmin(limited.service);
        const enrollment = await admin.createEnrollment();
        // One redeem of an unknown token uses up the window's only allowed request.
        const burned = await admin.call(
          "POST",
          `/api/federation/enrollment/${generateToken()}`,
          { csr: "x" },
          404,
        );
        expect(burned).toBeDefined();
        const result = await runEnroll(
          "bun",
          enrollArgs(limited.service.url, enrollment, freshOut()),
          workDir,
        );
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toMatch(/redeem: rate limited; waiting \d s as Retry-After asks/);
        await waitFor(() => redeemStatuses(limited.service).length >= 3, "three redeem log lines");
        expect(redeemStatuses(limited.service)).toEqual([404, 429, 201]);
      } finally {
        await limited.stop();
      }
    },
    SETUP_TIMEOUT_MS,
  );

  test(
    "rejects a server certificate outside the pinned root",
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "fe-enroll-tls-"));
      const { certFile, keyFile } = await selfSignedCertificate(dir);
      const files = await startTestService("bun", {
        TLS_CERT_FILE: certFile,
        TLS_KEY_FILE: keyFile,
      });
      try {
        const admin = await serviceAdmin(files.service, { ca: await readFile(certFile, "utf8") });
        const enrollment = await admin.createEnrollment();
        const result = await runEnroll(
          "node",
          enrollArgs(files.service.url, enrollment, freshOut()),
          workDir,
        );
        expect(result.exitCode).toBe(4);
        expect(result.stderr).toContain("must chain to the pinned root");
        expect(redeemStatuses(files.service)).toEqual([]);
      } finally {
        await files.stop();
        await rm(dir, { recursive: true, force: true });
      }
    },
    SETUP_TIMEOUT_MS,
  );

  test("reports a 5xx from the service", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fe-enroll-stub-"));
    const { certFile, keyFile } = await selfSignedCertificate(dir);
    const certPem = await readFile(certFile, "utf8");
    // A stand-in whose self-signed certificate is its own root and whose CA is unavailable.
    const stub = createHttpsServer(
      { cert: certPem, key: await readFile(keyFile) },
      (request, response) => {
        if (request.url === "/api/federation/ca/roots") {
          response.writeHead(200, { "content-type": "application/x-pem-file" });
          response.end(certPem);
          return;
        }
        response.writeHead(503, { "content-type": "application/problem+json" });
        response.end(
          JSON.stringify({
            status: 503,
            code: "ca_unavailable",
            detail: "The certificate authority is unavailable",
          }),
        );
      },
    );
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = stub.address() as { port: number };
      const fingerprint = new X509Certificate(certPem).fingerprint256;
      const args = [
        "--url",
        `https://127.0.0.1:${port}`,
        "--token",
        generateToken(),
        "--fingerprint",
        fingerprint,
        "--out",
        freshOut(),
      ];
      const result = await runEnroll("bun", args, workDir);
      expect(result.exitCode).toBe(7);
      expect(result.stderr).toContain("503 ca_unavailable");
    } finally {
      await new Promise<void>((resolve) => stub.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
