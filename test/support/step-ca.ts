// Runs a real step-ca (0.19, built by scripts/step-ca/build.sh) on loopback for tests and
// benchmarks. Each instance gets its own temporary PKI, JWK provisioner and bbolt database.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import { appendFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { calculateJwkThumbprint } from "jose";

const execFileAsync = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, "../..");
const buildScript = join(repoRoot, "scripts/step-ca/build.sh");
const templatePath = join(repoRoot, "templates/step-ca/federation-client.tpl");
const startTimeoutMs = 20_000;
const stopTimeoutMs = 5_000;

export interface StepCaOptions {
  provisionerName?: string;
  /** Provisioner claim maxTLSCertDuration. Default 86400 (step-ca's own default). */
  maxCertDurationSeconds?: number;
  /** Provisioner claim defaultTLSCertDuration. Default: the max. */
  defaultCertDurationSeconds?: number;
  /**
   * Where the duration claims go. "authority" sets them for the whole CA and none on the
   * provisioner, so GET /provisioners does not show them. Default "provisioner".
   */
  claimsAt?: "provisioner" | "authority";
}

export interface StepCaInstance {
  /** Base URL, https://127.0.0.1:PORT, without the /1.0 prefix. */
  url: string;
  rootPem: string;
  rootPath: string;
  /** Hex SHA-256 of the root certificate's DER, as step tokens carry it in the sha claim. */
  rootFingerprint: string;
  intermediatePem: string;
  provisionerName: string;
  /** Private JWK (JSON, mode 0600) whose kid is its RFC 7638 thumbprint. */
  provisionerKeyPath: string;
  /** Temporary directory with the PKI, ca.json, database and step-ca.log. */
  dir: string;
  /** Stops step-ca and deletes dir. */
  stop(): Promise<void>;
  /** Stops and starts step-ca with the same PKI, database and port. */
  restart(): Promise<void>;
}

export interface JsonResponse {
  status: number;
  body: unknown;
}

let located: Promise<{ bin: string } | { skip: string }> | undefined;

/**
 * Finds or builds step-ca. Returns a skip reason when it cannot be had, except under CI
 * (CI set), where that is an error because CI must run the step-ca tests.
 */
export function locateStepCa(): Promise<{ bin: string } | { skip: string }> {
  located ??= runBuildScript();
  return located;
}

async function runBuildScript(): Promise<{ bin: string } | { skip: string }> {
  try {
    const { stdout } = await execFileAsync("bash", [buildScript], {
      cwd: repoRoot,
      maxBuffer: 16 * 1024 * 1024,
    });
    const bin = stdout.trim().split("\n").at(-1) ?? "";
    if (bin === "") throw new Error(`${buildScript} printed no binary path`);
    return { bin };
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split("\n").slice(-5).join("\n");
    const reason = `step-ca is not available: ${buildScript} failed: ${stderr || String(error)}`;
    if (process.env.CI) throw new Error(reason);
    return { skip: reason };
  }
}

/** Starts step-ca on a free loopback port and resolves once /health returns status ok. */
export async function startStepCa(options: StepCaOptions = {}): Promise<StepCaInstance> {
  const found = await locateStepCa();
  if ("skip" in found) throw new Error(found.skip);

  const dir = await mkdtemp(join(tmpdir(), "step-ca-"));
  const provisionerName = options.provisionerName ?? "federation-enrollment";
  const pki = await createPki(dir);
  const provisionerKeyPath = join(dir, "provisioner.jwk.json");
  const publicJwk = await writeProvisionerKey(provisionerKeyPath);
  const port = await findFreePort();
  const configPath = join(dir, "ca.json");
  const config = caConfig(dir, pki, port, provisionerName, publicJwk, options);
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);

  const url = `https://127.0.0.1:${port}`;
  const rootPem = await readFile(pki.rootPath, "utf8");
  const logPath = join(dir, "step-ca.log");
  let child = await launch(found.bin, configPath, dir, url, rootPem, logPath);

  return {
    url,
    rootPem,
    rootPath: pki.rootPath,
    rootFingerprint: createHash("sha256").update(new X509Certificate(rootPem).raw).digest("hex"),
    intermediatePem: await readFile(pki.intermediatePath, "utf8"),
    provisionerName,
    provisionerKeyPath,
    dir,
    async stop() {
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await terminate(child);
      child = await launch(found.bin, configPath, dir, url, rootPem, logPath);
    },
  };
}

interface PkiPaths {
  rootPath: string;
  intermediatePath: string;
  intermediateKeyPath: string;
}

const opensslConfig = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

// Keys stay unencrypted because step-ca 0.19 loads an unencrypted intermediate key without
// --password-file, and the directory lives only as long as the instance.
async function createPki(dir: string): Promise<PkiPaths> {
  await writeFile(join(dir, "openssl.cnf"), opensslConfig);
  // Runs in dir with relative file names, so splitting each command on spaces is safe.
  const openssl = (command: string) => execFileAsync("openssl", command.split(" "), { cwd: dir });
  const newKey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -config openssl.cnf";
  await openssl(
    `req -x509 ${newKey} -extensions root -days 3650 -subj /CN=federation-test-root-ca ` +
      "-keyout root_ca.key -out root_ca.crt",
  );
  await openssl(
    `req -new ${newKey} -subj /CN=federation-test-intermediate-ca ` +
      "-keyout intermediate_ca.key -out intermediate_ca.csr",
  );
  await openssl(
    "x509 -req -in intermediate_ca.csr -CA root_ca.crt -CAkey root_ca.key " +
      `-set_serial 0x${randomBytes(8).toString("hex")} -extfile openssl.cnf ` +
      "-extensions intermediate -days 3650 -out intermediate_ca.crt",
  );
  return {
    rootPath: join(dir, "root_ca.crt"),
    intermediatePath: join(dir, "intermediate_ca.crt"),
    intermediateKeyPath: join(dir, "intermediate_ca.key"),
  };
}

/** Writes the private JWK and returns its public half for ca.json. */
async function writeProvisionerKey(path: string): Promise<Record<string, string>> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  const kid = await calculateJwkThumbprint(jwk as Parameters<typeof calculateJwkThumbprint>[0]);
  const privateJwk: Record<string, string> = { ...jwk, kid, alg: "ES256", use: "sig" };
  await writeFile(path, `${JSON.stringify(privateJwk)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  const { d: _d, ...publicJwk } = privateJwk;
  return publicJwk;
}

function caConfig(
  dir: string,
  pki: PkiPaths,
  port: number,
  provisionerName: string,
  publicJwk: Record<string, string>,
  options: StepCaOptions,
) {
  const max = options.maxCertDurationSeconds ?? 86_400;
  const def = options.defaultCertDurationSeconds ?? max;
  // step-ca rejects a configuration whose minimum exceeds the default, so the stock 5 minute
  // minimum shrinks when a test requests shorter certificates.
  const min = Math.min(300, def);
  const claims = {
    minTLSCertDuration: `${min}s`,
    maxTLSCertDuration: `${max}s`,
    defaultTLSCertDuration: `${def}s`,
    disableRenewal: false,
  };
  const onAuthority = options.claimsAt === "authority";
  return {
    root: pki.rootPath,
    crt: pki.intermediatePath,
    key: pki.intermediateKeyPath,
    address: `127.0.0.1:${port}`,
    dnsNames: ["127.0.0.1", "localhost"],
    logger: { format: "json" },
    // bbolt is the embedded back end in step-ca 0.19 besides badger. Without a database step-ca
    // returns 501 for revocation and keeps used tokens only in memory.
    db: { type: "bbolt", dataSource: join(dir, "db.bolt") },
    authority: {
      ...(onAuthority ? { claims } : {}),
      provisioners: [
        {
          type: "JWK",
          name: provisionerName,
          key: publicJwk,
          ...(onAuthority ? {} : { claims }),
          options: { x509: { templateFile: templatePath } },
        },
      ],
    },
  };
}

async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", done);
  });
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === "string") throw new Error("no TCP port assigned");
  return address.port;
}

// Every running child, so that a test process that dies without stop() leaves no step-ca behind.
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

async function launch(
  bin: string,
  configPath: string,
  dir: string,
  url: string,
  rootPem: string,
  logPath: string,
): Promise<ChildProcess> {
  await mkdir(join(dir, "step"), { recursive: true });
  // STEPPATH keeps step-ca from creating ~/.step.
  const child = spawn(bin, [configPath], {
    env: { ...process.env, STEPPATH: join(dir, "step") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  const appendLog = (chunk: Buffer) => appendFileSync(logPath, chunk);
  child.stdout?.on("data", appendLog);
  child.stderr?.on("data", appendLog);

  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    const health = await requestJson(`${url}/health`, { ca: rootPem }).catch(() => undefined);
    if (health?.status === 200 && (health.body as { status?: string }).status === "ok") {
      return child;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  await terminate(child);
  const log = await readFile(logPath, "utf8").catch(() => "");
  throw new Error(
    `step-ca at ${url} did not become healthy within ${startTimeoutMs} ms ` +
      `(exit code ${child.exitCode}); log ${logPath} ends with:\n${log.slice(-2000)}`,
  );
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Sends one HTTPS request that trusts only `ca` and returns the status with the parsed JSON body
 * (or the raw text when the body is not JSON). `cert` and `key` present a client certificate.
 */
export function requestJson(
  url: string,
  options: { ca: string; method?: string; body?: unknown; cert?: string; key?: string },
): Promise<JsonResponse> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((done, fail) => {
    const req = request(
      url,
      {
        method: options.method ?? (payload === undefined ? "GET" : "POST"),
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        headers: payload === undefined ? {} : { "content-type": "application/json" },
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", fail);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // Not JSON: step-ca returns a text/plain 404 for unknown paths, for example.
          }
          done({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on("error", fail);
    req.end(payload);
  });
}
