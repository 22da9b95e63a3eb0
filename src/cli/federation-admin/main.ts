/**
 * federation-admin: the admin API from the command line. Run it through
 * bin/federation-admin.mjs, or directly with `bun src/cli/federation-admin/main.ts`.
 *
 *   FEDERATION_URL=https://enroll.example.org FEDERATION_ADMIN_TOKEN=$(npm run --silent admin-token) \
 *     federation-admin enroll-peer peer-a.example.org --scopes orders:read
 */
import { readFile } from "node:fs/promises";
import { HELP, parseOptions } from "./args.ts";
import { AdminClient } from "./client.ts";
import { runCommand } from "./commands.ts";
import { AdminError, EXIT } from "./errors.ts";

async function readCa(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new AdminError(EXIT.usage, `cannot read the CA file ${file}: ${reason}`, {
      cause: error,
    });
  }
}

/** Runs the command and returns its exit code. Results go to stdout, errors to stderr. */
async function run(argv: string[]): Promise<number> {
  try {
    const options = parseOptions(argv, process.env);
    if (options === "help") {
      console.log(HELP);
      return EXIT.ok;
    }
    const client = new AdminClient({
      baseUrl: options.baseUrl,
      token: options.token,
      caPem: options.caFile ? await readCa(options.caFile) : undefined,
    });
    const output = await runCommand(client, options.command, options.baseUrl);
    console.log(options.json ? JSON.stringify(output.json, null, 2) : output.text);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof AdminError) {
      console.error(`federation-admin: ${error.message}`);
      return error.exitCode;
    }
    console.error("federation-admin: unexpected error:", error);
    return EXIT.unexpected;
  }
}

process.exitCode = await run(process.argv.slice(2));
