// Starting src/main.ts: configuration errors, the redacted summary, LOG_LEVEL and LOG_PRETTY.
import { describe, expect, test } from "bun:test";
import path from "node:path";
import { runCommand } from "./support/run-command.ts";
import { type Runtime, runtimeCommand, startService } from "./support/service-process.ts";

const repoRoot = path.resolve(import.meta.dirname, "..");
const MAIN = path.join(repoRoot, "src/main.ts");
// A DATA_DIR that cannot be created, so that the start fails right after the logger exists.
const UNUSABLE_DATA_DIR = "/dev/null/data";

/** Runs src/main.ts until it exits by itself, with only the environment given. */
async function runMain(runtime: Runtime, env: Record<string, string>) {
  const [command, args] = runtimeCommand(runtime, MAIN);
  const result = await runCommand(command, args, { cwd: repoRoot, env });
  return { code: result.code, output: result.stdout + result.stderr };
}

describe.each(["bun", "node"] as Runtime[])("startup under %s", (runtime) => {
  test("invalid value exits with 2", async () => {
    const result = await runMain(runtime, { PORT: "eighty" });
    expect(result.code).toBe(2);
    expect(result.output).toContain("invalid configuration:\n  PORT: ");
  });

  test("short secret is never echoed", async () => {
    const secret = "too-short-secret-4d1f";
    const result = await runMain(runtime, { ADMIN_JWT_SECRET: secret });
    expect(result.code).toBe(2);
    expect(result.output).toContain("ADMIN_JWT_SECRET: must be at least 32 characters");
    expect(result.output).not.toContain(secret);
  });

  test("LOG_LEVEL drops lower levels", async () => {
    const result = await runMain(runtime, { LOG_LEVEL: "warn", DATA_DIR: UNUSABLE_DATA_DIR });
    expect(result.code).toBe(1);
    const messages = result.output
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line).msg);
    expect(messages).toEqual(["start failed"]);
  });

  test("LOG_PRETTY prints text lines", async () => {
    const result = await runMain(runtime, { LOG_PRETTY: "true", DATA_DIR: UNUSABLE_DATA_DIR });
    expect(result.code).toBe(1);
    const lines = result.output.split("\n").filter(Boolean);
    expect(lines.some((line) => line.startsWith("{"))).toBe(false);
    expect(result.output).toMatch(/INFO.*: .*starting/);
    expect(result.output).toMatch(/FATAL.*: .*start failed/);
  });
});

describe("startup summary", () => {
  test("redacts the secrets", async () => {
    const adminSecret = "summary-test-admin-secret-6a0c9e1b2d3f4a5b";
    const metricsToken = "summary-test-metrics-token-77e2";
    const service = await startService({
      env: { ADMIN_JWT_SECRET: adminSecret, METRICS_TOKEN: metricsToken, TLS: "off" },
    });
    try {
      expect(await service.stop()).toBe(0);
      const output = service.output.join("\n");
      expect(output).not.toContain(adminSecret);
      expect(output).not.toContain(metricsToken);
      const starting = service.logs().find((line) => line.msg === "starting");
      const summary = starting?.config as Record<string, unknown>;
      expect(summary.adminAuth).toBe("hs256 (ADMIN_JWT_SECRET, redacted)");
      expect(summary.metrics).toBe("bearer (METRICS_TOKEN, redacted)");
      const messages = service.logs().map((line) => line.msg);
      expect(messages).toContain("stopping");
      expect(messages.at(-1)).toBe("stopped");
    } finally {
      await service.cleanup();
    }
  });
});
