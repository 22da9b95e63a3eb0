// Runs bin/federation-enroll.mjs as a child process under Bun or Node, from a directory outside
// the repository, as a peer would run it.
import { spawn } from "node:child_process";
import path from "node:path";
import type { Runtime } from "./service-process.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
export const ENROLL_LAUNCHER = path.join(repoRoot, "bin/federation-enroll.mjs");
const RUN_TIMEOUT_MS = 120_000;

export interface CommandResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs federation-enroll with `args` in `cwd` and resolves when it exits. */
export function runEnroll(runtime: Runtime, args: string[], cwd: string): Promise<CommandResult> {
  const command = runtime === "bun" ? path.join(repoRoot, "node_modules/.bin/bun") : "node";
  const child = spawn(command, [ENROLL_LAUNCHER, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`federation-enroll did not exit in time:\n${stdout}\n${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}
