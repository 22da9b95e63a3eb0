import { z } from "zod";

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const flag = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .default("false")
  .transform((value) => value === "true" || value === "1" || value === "yes");

// The default arc is a UUID under 2.25 (ITU-T X.667), so it needs no registration.
export const DEFAULT_OID_ARC = "2.25.233985178254312342613727431963563498871";

const oidArc = z
  .string()
  .regex(/^[0-2](\.(0|[1-9][0-9]*))+$/, "must be a dotted OID such as 2.25.1234");

const envSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().min(1).default("127.0.0.1"),
    DATA_DIR: z.string().min(1).default("./data"),
    PUBLIC_URL: z.url().optional(),
    DATABASE_URL: z.string().min(1).optional(),
    DATABASE_POOL_MAX: z.coerce.number().int().positive().default(10),
    LOG_LEVEL: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
      .default("info"),
    LOG_PRETTY: flag,
    // When set, GET /metrics requires "Authorization: Bearer <METRICS_TOKEN>"; otherwise it is public.
    METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),

    TLS: z.enum(["auto", "off"]).default("auto"),
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    // Lifetime of the server certificate that the built-in CA issues when no TLS files are set.
    // It is renewed after two thirds of its lifetime. The 60 s minimum only keeps renewal from
    // becoming a tight loop; deployments use days.
    TLS_CERT_LIFETIME_SECONDS: z.coerce
      .number()
      .int()
      .min(60, "must be at least 60 seconds")
      .default(7 * 24 * 3600),

    ADMIN_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    ADMIN_JWKS_URL: z.url().optional(),
    ADMIN_JWT_ISSUER: z.string().min(1).optional(),
    ADMIN_JWT_AUDIENCE: z.string().min(1).optional(),
    ADMIN_JWT_SCOPE: z.string().min(1).default("federation:admin"),

    STEP_CA_URL: z.url().optional(),
    STEP_CA_ROOT: z.string().min(1).optional(),
    STEP_CA_PROVISIONER: z.string().min(1).optional(),
    STEP_CA_PROVISIONER_KEY: z.string().min(1).optional(),
    CA_TIMEOUT_SECONDS: seconds(10),

    CERT_TTL_SECONDS: seconds(24 * 3600),
    CERT_OID_ARC: oidArc.default(DEFAULT_OID_ARC),
    TOKEN_TTL_SECONDS: seconds(15 * 60),
    TOKEN_TTL_MAX_SECONDS: seconds(24 * 3600),
    TOKEN_MAX_FAILED_ATTEMPTS: seconds(5),
    REPLAY_WINDOW_SECONDS: seconds(10 * 60),

    REDEEM_RATE_LIMIT: seconds(10),
    REDEEM_RATE_WINDOW_SECONDS: seconds(60),
    RATE_LIMIT_STORE: z.enum(["memory", "postgres"]).default("memory"),
    TRUST_PROXY: flag,
    SHUTDOWN_GRACE_SECONDS: seconds(20),

    // How often pending CA revocations are looked for; a failed attempt waits this long times 2^n.
    REVOCATION_RETRY_INTERVAL_SECONDS: z.coerce.number().positive().default(30),
    REVOCATION_RETRY_MAX_BACKOFF_SECONDS: z.coerce.number().positive().default(3600),
    // nextUpdate of the built-in CA's CRL, counted from its thisUpdate.
    CRL_VALIDITY_SECONDS: seconds(3600),
  })
  .superRefine((env, ctx) => {
    if (env.ADMIN_JWT_SECRET && env.ADMIN_JWKS_URL) {
      ctx.addIssue({
        code: "custom",
        path: ["ADMIN_JWKS_URL"],
        message: "set either ADMIN_JWT_SECRET or ADMIN_JWKS_URL, not both",
      });
    }
    const stepCa = [env.STEP_CA_URL, env.STEP_CA_ROOT, env.STEP_CA_PROVISIONER];
    if (stepCa.some(Boolean) && !(stepCa.every(Boolean) && env.STEP_CA_PROVISIONER_KEY)) {
      ctx.addIssue({
        code: "custom",
        path: ["STEP_CA_URL"],
        message:
          "step-ca needs all of STEP_CA_URL, STEP_CA_ROOT, STEP_CA_PROVISIONER and STEP_CA_PROVISIONER_KEY",
      });
    }
    if (Boolean(env.TLS_CERT_FILE) !== Boolean(env.TLS_KEY_FILE)) {
      ctx.addIssue({
        code: "custom",
        path: ["TLS_KEY_FILE"],
        message: "set TLS_CERT_FILE and TLS_KEY_FILE together",
      });
    }
  });

export type Env = z.infer<typeof envSchema>;

export interface Config extends Env {
  /** Base URL peers use, without a trailing slash. */
  publicUrl: string;
  /** How long a claim on a token lasts. Longer than the CA timeout, so a live claim never expires. */
  claimLeaseSeconds: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment. Throws a ConfigError that names each invalid variable. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const result = envSchema.safeParse(source);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const env = result.data;
  const scheme = env.TLS === "off" ? "http" : "https";
  const defaultHost = env.HOST === "0.0.0.0" || env.HOST === "::" ? "localhost" : env.HOST;
  const publicUrl = (env.PUBLIC_URL ?? `${scheme}://${defaultHost}:${env.PORT}`).replace(
    /\/+$/,
    "",
  );
  return { ...env, publicUrl, claimLeaseSeconds: env.CA_TIMEOUT_SECONDS * 3 };
}
