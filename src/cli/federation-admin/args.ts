import { parseArgs } from "node:util";
import { AdminError, EXIT, EXIT_CODE_HELP } from "./errors.ts";

export type Command =
  | { name: "enroll-peer"; peerName: string; scopes: string[]; endpoint?: string; ttl?: number }
  | { name: "tokens list"; grantId: string }
  | { name: "tokens revoke"; tokenId: string }
  | { name: "grants revoke"; grantId: string; reason?: string }
  | { name: "audit"; resourceId?: string; limit?: number; cursor?: number };

export interface AdminOptions {
  /** Base URL of the service, without a trailing slash. */
  baseUrl: string;
  token: string;
  /** File with the PEM roots to trust, from --ca or FEDERATION_CA_FILE. */
  caFile?: string;
  json: boolean;
  command: Command;
}

export const HELP = [
  "Usage: federation-admin [--url URL] [--ca FILE] [--json] COMMAND [options]",
  "",
  "Manages federation peers through the enrollment service's admin API.",
  "",
  "Commands:",
  "  enroll-peer NAME --scopes A,B [--endpoint URL] [--ttl SECONDS]",
  "      registers peer NAME, creates a pending grant with the scopes and a single-use token,",
  "      and prints the federation-enroll command the peer runs",
  "  tokens list --grant ID        lists a grant's tokens, newest first",
  "  tokens revoke ID              revokes an unused token",
  "  grants revoke ID [--reason R] revokes a grant, its unused tokens and its certificate;",
  "      R is an RFC 5280 reason such as privilegeWithdrawn (default unspecified)",
  "  audit [--resource-id ID] [--limit N] [--cursor N]",
  "      lists audit rows, newest first; N is 1-200 (default 50)",
  "",
  "Options:",
  "  --url URL     base URL of the service (default: FEDERATION_URL)",
  "  --ca FILE     PEM file of the roots to trust for HTTPS (default: FEDERATION_CA_FILE,",
  "                else the system roots)",
  "  --json        print the API's JSON instead of a table",
  "  -h, --help    print this help",
  "",
  "Environment:",
  "  FEDERATION_ADMIN_TOKEN  admin JWT, sent as a Bearer token (required; never a flag, so",
  "                          that it stays out of the process list)",
  "  FEDERATION_URL          base URL of the service",
  "  FEDERATION_CA_FILE      PEM file of the roots to trust",
  "",
  "Exit codes:",
  ...EXIT_CODE_HELP,
].join("\n");

function usage(message: string): AdminError {
  return new AdminError(EXIT.usage, `${message}\nRun federation-admin --help for usage.`);
}

function parseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usage(`the service URL "${text}" is not a valid URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw usage(`the service URL must use https or http, got ${url.protocol}//`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

function positiveInteger(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text)) throw usage(`--${name} must be a positive whole number`);
  return Number(text);
}

type Values = Record<string, string | boolean | undefined>;

function parseCommand(positionals: string[], values: Values): Command {
  const [first, second, ...rest] = positionals;
  const text = (name: string) => values[name] as string | undefined;
  const allow = (command: string, names: string[], extra: string[]) => {
    for (const name of [
      "scopes",
      "endpoint",
      "ttl",
      "grant",
      "reason",
      "resource-id",
      "limit",
      "cursor",
    ]) {
      if (values[name] !== undefined && !names.includes(name)) {
        throw usage(`${command} takes no --${name}`);
      }
    }
    if (extra.length > 0) throw usage(`${command}: unexpected argument "${extra[0]}"`);
  };

  if (first === "enroll-peer") {
    allow("enroll-peer", ["scopes", "endpoint", "ttl"], rest);
    if (!second) throw usage("enroll-peer needs the peer NAME");
    const scopes = text("scopes");
    if (scopes === undefined)
      throw usage("enroll-peer needs --scopes, such as --scopes orders:read");
    return {
      name: "enroll-peer",
      peerName: second,
      scopes: scopes
        .split(",")
        .map((scope) => scope.trim())
        .filter(Boolean),
      endpoint: text("endpoint"),
      ttl: positiveInteger("ttl", text("ttl")),
    };
  }
  if (first === "tokens" && second === "list") {
    allow("tokens list", ["grant"], rest);
    const grantId = text("grant");
    if (!grantId) throw usage("tokens list needs --grant ID");
    return { name: "tokens list", grantId };
  }
  if (first === "tokens" && second === "revoke") {
    allow("tokens revoke", [], rest.slice(1));
    if (!rest[0]) throw usage("tokens revoke needs the token ID");
    return { name: "tokens revoke", tokenId: rest[0] };
  }
  if (first === "grants" && second === "revoke") {
    allow("grants revoke", ["reason"], rest.slice(1));
    if (!rest[0]) throw usage("grants revoke needs the grant ID");
    return { name: "grants revoke", grantId: rest[0], reason: text("reason") };
  }
  if (first === "audit") {
    allow(
      "audit",
      ["resource-id", "limit", "cursor"],
      second === undefined ? [] : [second, ...rest],
    );
    return {
      name: "audit",
      resourceId: text("resource-id"),
      limit: positiveInteger("limit", text("limit")),
      cursor: positiveInteger("cursor", text("cursor")),
    };
  }
  const given = [first, second].filter(Boolean).join(" ");
  throw usage(given ? `unknown command "${given}"` : "a command is required");
}

/** Parses the command line and the environment. Returns "help" when help was requested. */
export function parseOptions(
  argv: string[],
  env: Record<string, string | undefined>,
): AdminOptions | "help" {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        ca: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        scopes: { type: "string" },
        endpoint: { type: "string" },
        ttl: { type: "string" },
        grant: { type: "string" },
        reason: { type: "string" },
        "resource-id": { type: "string" },
        limit: { type: "string" },
        cursor: { type: "string" },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw usage(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === "help") return "help";

  const command = parseCommand(positionals, values);
  const url = (values.url as string | undefined) ?? env.FEDERATION_URL;
  if (!url) throw usage("set FEDERATION_URL or pass --url");
  const token = env.FEDERATION_ADMIN_TOKEN?.trim();
  if (!token) {
    throw usage("set FEDERATION_ADMIN_TOKEN to an admin JWT, for example from npm run admin-token");
  }
  return {
    baseUrl: parseBaseUrl(url),
    token,
    caFile: (values.ca as string | undefined) ?? (env.FEDERATION_CA_FILE || undefined),
    json: values.json === true,
    command,
  };
}
