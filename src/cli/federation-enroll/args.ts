import path from "node:path";
import { parseArgs } from "node:util";
import { isWellFormedToken, TOKEN_LENGTH, TOKEN_PREFIX } from "../../enrollment/token-format.ts";
import { EnrollError, EXIT, EXIT_CODE_HELP } from "./errors.ts";
import { MAX_ATTEMPTS, MAX_RATE_LIMIT_WAIT_SECONDS } from "./redeem.ts";

export const KEY_TYPES = ["ec-p256", "ec-p384", "ed25519", "rsa-3072"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export interface EnrollOptions {
  /** Base URL of the enrollment service, without a trailing slash. */
  baseUrl: string;
  token: string;
  /** Lowercase hex SHA-256 of the root certificate's DER, without colons. */
  fingerprint: string;
  outDir: string;
  keyType: KeyType;
  force: boolean;
  quiet: boolean;
}

export const HELP = [
  "Usage: federation-enroll --url URL --token TOKEN --fingerprint SHA256 --out DIR [options]",
  "",
  "Enrolls this system as a federation peer: pins the service's CA root by its fingerprint,",
  "generates a private key that never leaves this machine, redeems the single-use token for a",
  "client certificate, verifies it and writes key.pem (mode 0600), cert.pem, chain.pem (leaf",
  "then intermediates) and root.pem to DIR.",
  "",
  "Options:",
  "  --url URL            base URL of the enrollment service, https only",
  "  --token TOKEN        enrollment token from the admin (fedtok_...)",
  "  --fingerprint SHA256 SHA-256 of the CA root from the admin, hex; colons allowed",
  "  --out DIR            directory for the files; created when missing",
  `  --key-type TYPE      ${KEY_TYPES.join(", ")} (default ec-p256)`,
  "  --force              replace an existing DIR/key.pem",
  "  --quiet              print errors only",
  "  -h, --help           print this help",
  "",
  "The service's TLS certificate must chain to the pinned root. After a network failure the",
  `redeem is retried with the same key, up to ${MAX_ATTEMPTS} attempts, and 429 answers are waited`,
  `out as Retry-After asks, for at most ${MAX_RATE_LIMIT_WAIT_SECONDS} s in total.`,
  "",
  "Exit codes:",
  ...EXIT_CODE_HELP,
].join("\n");

function usage(message: string): EnrollError {
  return new EnrollError(EXIT.usage, `${message}\nRun federation-enroll --help for usage.`);
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw usage(`--${name} is required`);
  return value;
}

function parseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usage(`--url "${text}" is not a valid URL`);
  }
  // The token travels in the request path, so it must never go over plain HTTP.
  if (url.protocol !== "https:") throw usage(`--url must use https, got ${url.protocol}//`);
  if (url.search || url.hash) throw usage("--url must not have a query or a fragment");
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** Normalizes a fingerprint to lowercase hex without colons. */
export function normalizeFingerprint(text: string): string {
  const hex = text.replaceAll(":", "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw usage("--fingerprint must be a SHA-256 in hex: 64 hex digits, colons allowed");
  }
  return hex;
}

/** Checks the token's prefix, length and checksum without any network call. */
function checkToken(token: string): string {
  if (!token.startsWith(TOKEN_PREFIX)) {
    throw usage(`the token is mistyped: it must start with ${TOKEN_PREFIX}`);
  }
  if (token.length !== TOKEN_LENGTH) {
    throw usage(
      `the token is mistyped: it has ${token.length} characters, expected ${TOKEN_LENGTH}`,
    );
  }
  if (!isWellFormedToken(token)) {
    throw usage("the token is mistyped: its checksum does not match; copy it again");
  }
  return token;
}

/** Parses the command line. Returns "help" when help was requested. */
export function parseOptions(argv: string[]): EnrollOptions | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        fingerprint: { type: "string" },
        out: { type: "string" },
        "key-type": { type: "string", default: "ec-p256" },
        force: { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw usage(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return "help";

  const keyType = values["key-type"] as string;
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) {
    throw usage(`--key-type must be one of ${KEY_TYPES.join(", ")}, got "${keyType}"`);
  }
  return {
    baseUrl: parseBaseUrl(required(values, "url")),
    token: checkToken(required(values, "token").trim()),
    fingerprint: normalizeFingerprint(required(values, "fingerprint")),
    outDir: path.resolve(required(values, "out")),
    keyType: keyType as KeyType,
    force: values.force === true,
    quiet: values.quiet === true,
  };
}
