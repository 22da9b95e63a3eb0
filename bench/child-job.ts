// Runs a baseline script in a child process under Bun or Node and reads its one-line JSON result.
// A baseline runs under the same runtime as the service it is compared with.
import { spawn } from "node:child_process";
import { REPO_ROOT, type Runtime, runtimeCommand } from "./child-server.ts";

/** Upper bound on a child job, far above any run it performs. */
const JOB_TIMEOUT_MS = 120_000;

/** Reads the job a child was started with, from the BENCH_JOB environment variable. */
export function readJob<T>(): T {
  const text = process.env.BENCH_JOB;
  if (!text) throw new Error("BENCH_JOB is not set; this script is started by bench/main.ts");
  return JSON.parse(text) as T;
}

/** Starts `script` with `job` and resolves with the JSON object it prints last on stdout. */
export function runChildJob<T>(runtime: Runtime, script: string, job: unknown): Promise<T> {
  const [command, args] = runtimeCommand(runtime, script);
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, BENCH_JOB: JSON.stringify(job) },
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
  const timer = setTimeout(() => child.kill("SIGKILL"), JOB_TIMEOUT_MS);
  return new Promise<T>((resolve, reject) => {
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const last = stdout.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !last.startsWith("{")) {
        const output = `${stdout}\n${stderr}`.trim().slice(-3000);
        reject(new Error(`${script} under ${runtime} failed (${code ?? signal}):\n${output}`));
        return;
      }
      resolve(JSON.parse(last) as T);
    });
  });
}
