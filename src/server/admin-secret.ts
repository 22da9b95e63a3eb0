import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { SignJWT } from "jose";

export const ADMIN_SECRET_FILE = "admin-jwt-secret";

/**
 * Returns the HS256 secret kept in DATA_DIR, generating it (mode 0600) on first use. Used when
 * neither ADMIN_JWT_SECRET nor ADMIN_JWKS_URL is set. The `wx` flag makes concurrent first starts
 * agree on one secret.
 */
export async function loadOrCreateAdminSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, ADMIN_SECRET_FILE);
  try {
    return (await readFile(file, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    await writeFile(file, `${randomBytes(32).toString("base64url")}\n`, {
      mode: 0o600,
      flag: "wx",
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  return (await readFile(file, "utf8")).trim();
}

export interface AdminTokenOptions {
  secret: string;
  subject: string;
  scope: string;
  issuer?: string;
  audience?: string;
  ttlSeconds: number;
}

/** Signs a short-lived HS256 admin JWT. */
export function signAdminToken(options: AdminTokenOptions): Promise<string> {
  let jwt = new SignJWT({ scope: options.scope })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(options.subject)
    .setIssuedAt()
    .setExpirationTime(`${options.ttlSeconds}s`);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
