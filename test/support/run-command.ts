// Runs a command line to completion for tests of CLIs and of the service's own start.
import { execFile } from "node:child_process";

export interface CommandResult {
  /** The exit code, or -1 when a signal ended the process. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  /** Added to PATH and HOME, which are the only variables passed on from the test process. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs `command` and resolves once it exits, whatever its exit code. */
export function runCommand(
  command: string,
  args: string[],
  options: RunOptions,
): Promise<CommandResult> {
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...options.env };
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => {
        let code = 0;
        if (error) code = typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
