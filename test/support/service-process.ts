// Runs the real service as a child process, under Bun or Node, for end-to-end tests.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const START_TIMEOUT_MS = 60_000;

export type Runtime = "bun" | "node";

export interface ServiceProcess {
  runtime: Runtime;
  /** Base URL the service listens on, such as https://127.0.0.1:41234. */
  url: string;
  port: number;
  /** Hex SHA-256 of the CA root, from the "listening" log line. */
  caFingerprint: string;
  dataDir: string;
  env: Record<string, string>;
  child: ChildProcess;
  /** Every stdout and stderr line so far. */
  output: string[];
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Sends a signal and resolves with the exit code, or the signal name when killed. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** Removes the data directory unless the caller passed its own. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  runtime?: Runtime;
  env?: Record<string, string>;
  /** Reuse a data directory, for example to restart on the same embedded database. */
  dataDir?: string;
}

/** Command line that runs src/main.ts under the runtime. */
export function runtimeCommand(runtime: Runtime, script: string): [string, string[]] {
  const bin = path.join(repoRoot, "node_modules/.bin");
  return runtime === "bun"
    ? [path.join(bin, "bun"), [script]]
    : [process.execPath.endsWith("node") ? process.execPath : "node", ["--import", "tsx", script]];
}

/**
 * Starts the service on a free loopback port and waits for its "listening" log line. PORT=0 lets
 * the OS choose; the log line carries the port in use.
 */
export async function startService(options: StartOptions = {}): Promise<ServiceProcess> {
  const runtime = options.runtime ?? "bun";
  const ownDataDir = !options.dataDir;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), "fe-service-")));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/root",
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: dataDir,
    LOG_LEVEL: "info",
    ...options.env,
  };
  const [command, args] = runtimeCommand(runtime, path.join(repoRoot, "src/main.ts"));
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  const exited = new Promise<number | string>((resolve) => {
    // "close" rather than "exit": it comes once stdout and stderr are drained as well, so the
    // last log lines are in `output` when stop() resolves.
    child.once("close", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });

  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`service did not start in time:\n${output.join("\n")}`)),
      START_TIMEOUT_MS,
    );
    const onLine = (line: string) => {
      output.push(line);
      if (!line.startsWith("{")) return;
      try {
        const entry = JSON.parse(line);
        if (entry.msg === "listening") {
          clearTimeout(timer);
          resolve(entry);
        }
      } catch {
        // Not a log line.
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = "";
      stream?.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        lines.forEach(onLine);
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before listening:\n${output.join("\n")}`));
    });
  });

  const entry = await listening;
  const url = String(entry.url);
  return {
    runtime,
    url,
    port: Number(new URL(url).port),
    caFingerprint: String(entry.caFingerprint),
    dataDir,
    env,
    child,
    output,
    logs: () =>
      output
        .filter((line) => line.startsWith("{"))
        .flatMap((line) => {
          try {
            return [JSON.parse(line)];
          } catch {
            return [];
          }
        }),
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    async cleanup() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
