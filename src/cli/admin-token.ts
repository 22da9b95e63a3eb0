/**
 * Prints a short-lived admin JWT signed with the service's HS256 secret: ADMIN_JWT_SECRET, or the
 * secret the service generated in DATA_DIR. The secret itself is never printed.
 *
 *   npm run --silent admin-token [-- --ttl 3600 --sub alice]
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.ts";
import { loadOrCreateAdminSecret, signAdminToken } from "../server/admin-secret.ts";

const { values } = parseArgs({
  options: {
    ttl: { type: "string", default: "3600" },
    sub: { type: "string", default: "local-admin" },
  },
});

try {
  const config = loadConfig();
  if (config.ADMIN_JWKS_URL) {
    console.error(
      "admin-token: ADMIN_JWKS_URL is set; get admin tokens from your identity provider",
    );
    process.exit(2);
  }
  const ttlSeconds = Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > 86_400) {
    console.error("admin-token: --ttl must be a whole number of seconds from 1 to 86400");
    process.exit(2);
  }
  const secret = config.ADMIN_JWT_SECRET ?? (await loadOrCreateAdminSecret(config.DATA_DIR));
  const token = await signAdminToken({
    secret,
    subject: values.sub as string,
    scope: config.ADMIN_JWT_SCOPE,
    issuer: config.ADMIN_JWT_ISSUER,
    audience: config.ADMIN_JWT_AUDIENCE,
    ttlSeconds,
  });
  console.log(token);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
