// federation-admin as a child process against the real service, under Bun and under Node.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Database } from "../src/db/connect.ts";
import { signAdminToken } from "../src/server/admin-secret.ts";
import { createTestDatabase, usingPostgres } from "./support/database.ts";
import { type CommandResult, runCommand } from "./support/run-command.ts";
import {
  type Runtime,
  runtimeCommand,
  type ServiceProcess,
  startService,
} from "./support/service-process.ts";

const ADMIN_SECRET = "federation-admin-test-secret-0123456789abcdef";
const repoRoot = path.resolve(import.meta.dirname, "..");
const ADMIN_BIN = path.join(repoRoot, "bin/federation-admin.mjs");
const ENROLL_BIN = path.join(repoRoot, "bin/federation-enroll.mjs");

/** Runs a launcher under `runtime`, with only the environment given. */
function runBin(
  runtime: Runtime,
  bin: string,
  args: string[],
  env: Record<string, string>,
  cwd = repoRoot,
): Promise<CommandResult> {
  const [command, runtimeArgs] = runtimeCommand(runtime, bin);
  // The launcher registers tsx itself, so Node needs no --import.
  const prefix = runtime === "node" ? [bin] : runtimeArgs;
  return runCommand(command, [...prefix, ...args], { cwd, env });
}

/** Finds a loopback port that was free a moment ago, so that PUBLIC_URL can name it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

describe.each(["bun", "node"] as Runtime[])("federation-admin under %s", (runtime) => {
  let database: Database | undefined;
  let service: ServiceProcess;
  let env: Record<string, string>;
  let workDir: string;

  const admin = (...args: string[]) => runBin(runtime, ADMIN_BIN, args, env);

  beforeAll(async () => {
    database = usingPostgres ? await createTestDatabase({ poolMax: 1 }) : undefined;
    service = await startService({
      runtime,
      env: {
        PORT: String(await freePort()),
        ADMIN_JWT_SECRET: ADMIN_SECRET,
        ...(database ? { DATABASE_URL: database.url } : {}),
      },
    });
    workDir = await mkdtemp(path.join(tmpdir(), "fe-admin-cli-"));
    env = {
      FEDERATION_URL: service.url,
      FEDERATION_CA_FILE: path.join(service.dataDir, "ca/root.crt"),
      FEDERATION_ADMIN_TOKEN: await signAdminToken({
        secret: ADMIN_SECRET,
        subject: "cli-test",
        scope: "federation:admin",
        ttlSeconds: 600,
      }),
    };
  });

  afterAll(async () => {
    await service?.cleanup();
    await database?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function enrollJson(name: string) {
    const result = await admin(
      "--json",
      "enroll-peer",
      name,
      "--scopes",
      "orders:read,orders:write",
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout);
  }

  test("enroll-peer prints the enroll command", async () => {
    const name = `table-${runtime}.example.org`;
    const result = await admin("enroll-peer", name, "--scopes", "orders:read");
    expect(result.code).toBe(0);
    const token = /^token\s+(fedtok_\w+)$/m.exec(result.stdout)?.[1];
    expect(token).toBeDefined();
    expect(result.stdout).toMatch(new RegExp(`^fingerprint\\s+${service.caFingerprint}$`, "m"));
    expect(result.stdout).toContain(
      `  npx federation-enroll --url ${service.url} --token ${token} --fingerprint ${service.caFingerprint} --out ./${name}\n`,
    );
  });

  test("printed command enrolls the peer", async () => {
    const name = `printed-${runtime}.example.org`;
    const created = await enrollJson(name);
    const [npx, bin, ...args] = (created.command as string).split(" ");
    expect(npx).toBe("npx");
    expect(bin).toBe("federation-enroll");
    const result = await runBin(runtime, ENROLL_BIN, args, {}, workDir);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect((await readdir(path.join(workDir, name))).sort()).toEqual([
      "cert.pem",
      "chain.pem",
      "key.pem",
      "root.pem",
    ]);
  });

  test("tokens list shows the token", async () => {
    const created = await enrollJson(`list-${runtime}.example.org`);
    const table = await admin("tokens", "list", "--grant", created.grant.id);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${created.token.id}\\s+active\\s`, "m"));
    expect(table.stdout).not.toContain(created.token.token);

    const json = await admin("--json", "tokens", "list", "--grant", created.grant.id);
    expect(JSON.parse(json.stdout).items.map((item: { id: string }) => item.id)).toEqual([
      created.token.id,
    ]);
  });

  test("tokens revoke revokes", async () => {
    const created = await enrollJson(`revoke-token-${runtime}.example.org`);
    const result = await admin("tokens", "revoke", created.token.id);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(`token ${created.token.id} is revoked`);
    const list = JSON.parse(
      (await admin("--json", "tokens", "list", "--grant", created.grant.id)).stdout,
    );
    expect(list.items[0].status).toBe("revoked");
  });

  test("grants revoke records the reason", async () => {
    const created = await enrollJson(`revoke-grant-${runtime}.example.org`);
    const result = await admin(
      "--json",
      "grants",
      "revoke",
      created.grant.id,
      "--reason",
      "privilegeWithdrawn",
    );
    expect(result.code).toBe(0);
    const grant = JSON.parse(result.stdout);
    expect(grant.status).toBe("revoked");
    expect(grant.revokeReason).toBe("privilegeWithdrawn");
  });

  test("audit filters by resource", async () => {
    const created = await enrollJson(`audit-${runtime}.example.org`);
    const result = await admin(
      "--json",
      "audit",
      "--resource-id",
      created.grant.id,
      "--limit",
      "5",
    );
    expect(result.code).toBe(0);
    const page = JSON.parse(result.stdout);
    expect(page.items.map((row: { verb: string }) => row.verb)).toEqual(["grant.create"]);

    const table = await admin("audit", "--resource-id", created.grant.id);
    expect(table.stdout).toMatch(/^ID\s+TIME\s+ACTOR\s+VERB/);
    expect(table.stdout).toContain("grant.create");
  });

  test("prints the problem detail", async () => {
    const result = await admin("tokens", "revoke", "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f");
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(
      "the service answered 404 not_found: no enrollment token with id 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f (request id ",
    );
  });

  test("reports what enroll-peer created", async () => {
    const name = `partial-${runtime}.example.org`;
    const result = await admin("enroll-peer", name, "--scopes", "not a scope");
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(
        `peer ${name} \\([0-9a-f-]{36}\\) was created, but creating its grant failed: the service answered 400 validation_failed`,
      ),
    );
  });

  test("rejects a missing admin token", async () => {
    const result = await runBin(runtime, ADMIN_BIN, ["audit"], {
      ...env,
      FEDERATION_ADMIN_TOKEN: "",
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("set FEDERATION_ADMIN_TOKEN");
  });

  test("rejects an unknown command", async () => {
    const result = await admin("peers", "delete");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "peers delete"');
  });

  test("fails TLS without the CA", async () => {
    const result = await runBin(runtime, ADMIN_BIN, ["audit"], { ...env, FEDERATION_CA_FILE: "" });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`GET ${service.url}/api/federation/audit failed`);
  });

  test("takes the CA from --ca", async () => {
    const result = await runBin(
      runtime,
      ADMIN_BIN,
      ["--ca", env.FEDERATION_CA_FILE as string, "audit", "--limit", "1"],
      { ...env, FEDERATION_CA_FILE: "" },
    );
    expect(result.code).toBe(0);
  });

  test("reports an unreachable service", async () => {
    const port = await freePort();
    const result = await admin("--url", `https://127.0.0.1:${port}`, "audit");
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("ECONNREFUSED");
  });

  test("help lists the exit codes", async () => {
    const result = await admin("--help");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Exit codes:\n  0  success\n");
    expect(result.stdout).toContain("  4  the service rejected the request (4xx)");
  });
});
