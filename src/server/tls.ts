import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { CertificateAuthority } from "../ca/authority.ts";
import { BuiltinCa } from "../ca/builtin/builtin-ca.ts";
import { type Config, ConfigError } from "../config.ts";
import type { RunningServer, TlsMaterial } from "./listen.ts";

/** The certificate is renewed once this share of its lifetime has passed. */
const RENEW_AT_FRACTION = 2 / 3;
/** Maximum wait before a failed renewal is tried again. */
const MAX_RETRY_DELAY_MS = 60_000;

export interface ServerTls {
  initial: TlsMaterial;
  /** Starts renewing the certificate on `server`; returns a function that stops it. */
  startRenewal(server: RunningServer): () => void;
}

function serverHosts(config: Config): string[] {
  const hosts = new Set([
    new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, ""),
    "localhost",
    "127.0.0.1",
    "::1",
  ]);
  if (config.HOST !== "0.0.0.0" && config.HOST !== "::") hosts.add(config.HOST);
  return [...hosts];
}

/**
 * Decides how the listener gets its certificate: from TLS_CERT_FILE and TLS_KEY_FILE, from the
 * built-in CA (renewed without a restart), or not at all when TLS=off.
 */
export async function serverTls(
  config: Config,
  ca: CertificateAuthority,
  logger: Logger,
): Promise<ServerTls | undefined> {
  if (config.TLS === "off") return undefined;
  if (config.TLS_CERT_FILE && config.TLS_KEY_FILE) {
    const initial = {
      cert: await readFile(config.TLS_CERT_FILE, "utf8"),
      key: await readFile(config.TLS_KEY_FILE, "utf8"),
    };
    return { initial, startRenewal: () => () => {} };
  }
  if (!(ca instanceof BuiltinCa)) {
    throw new ConfigError(
      "invalid configuration:\n  TLS_CERT_FILE: with step-ca, set TLS_CERT_FILE and TLS_KEY_FILE, or TLS=off behind a TLS-terminating proxy",
    );
  }
  const hosts = serverHosts(config);
  const lifetimeMs = config.TLS_CERT_LIFETIME_SECONDS * 1000;
  // Renewal starts with a third of the lifetime left. Retrying after a sixth of the lifetime
  // leaves room for at least one more attempt before the certificate expires.
  const retryDelayMs = Math.min(MAX_RETRY_DELAY_MS, lifetimeMs / 6);
  const issue = () => ca.issueServerCertificate(hosts, config.TLS_CERT_LIFETIME_SECONDS);
  const first = await issue();
  return {
    initial: { cert: first.cert, key: first.key },
    startRenewal(server) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let stopped = false;
      const schedule = (notAfter: Date) => {
        const remaining = notAfter.getTime() - Date.now();
        const delay = Math.max(remaining - lifetimeMs * (1 - RENEW_AT_FRACTION), 1000);
        // setTimeout holds at most 2^31-1 ms; a longer wait is done in steps.
        timer = setTimeout(renew, Math.min(delay, 2 ** 31 - 1), notAfter);
        timer.unref();
      };
      const renew = async (notAfter: Date) => {
        if (notAfter.getTime() - Date.now() > lifetimeMs * (1 - RENEW_AT_FRACTION)) {
          schedule(notAfter);
          return;
        }
        try {
          const next = await issue();
          // Stopping can happen while the CA signs; a stopped server must not start listening again.
          if (stopped) return;
          server.updateTls({ cert: next.cert, key: next.key });
          logger.info({ notAfter: next.notAfter.toISOString() }, "server certificate renewed");
          schedule(next.notAfter);
        } catch (error) {
          logger.error(
            { err: error, retryInSeconds: retryDelayMs / 1000 },
            "server certificate renewal failed",
          );
          timer = setTimeout(renew, retryDelayMs, notAfter);
          timer.unref();
        }
      };
      schedule(first.notAfter);
      return () => {
        stopped = true;
        clearTimeout(timer);
      };
    },
  };
}
