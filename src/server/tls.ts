import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { CertificateAuthority } from "../ca/authority.ts";
import { BuiltinCa } from "../ca/builtin/builtin-ca.ts";
import { type Config, ConfigError } from "../config.ts";
import type { RunningServer, TlsMaterial } from "./listen.ts";

/** Lifetime of the server certificate the built-in CA issues for this service. */
const SERVER_CERT_LIFETIME_SECONDS = 7 * 24 * 3600;
/** The certificate is renewed once this share of its lifetime has passed. */
const RENEW_AT_FRACTION = 2 / 3;

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
  const issue = () => ca.issueServerCertificate(hosts, SERVER_CERT_LIFETIME_SECONDS);
  const first = await issue();
  return {
    initial: { cert: first.cert, key: first.key },
    startRenewal(server) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const schedule = (notAfter: Date) => {
        const remaining = notAfter.getTime() - Date.now();
        const delay = Math.max(
          remaining - SERVER_CERT_LIFETIME_SECONDS * 1000 * (1 - RENEW_AT_FRACTION),
          1000,
        );
        // setTimeout holds at most 2^31-1 ms; a longer wait is done in steps.
        timer = setTimeout(renew, Math.min(delay, 2 ** 31 - 1), notAfter);
        timer.unref();
      };
      const renew = async (notAfter: Date) => {
        if (
          notAfter.getTime() - Date.now() >
          SERVER_CERT_LIFETIME_SECONDS * 1000 * (1 - RENEW_AT_FRACTION)
        ) {
          schedule(notAfter);
          return;
        }
        try {
          const next = await issue();
          server.updateTls({ cert: next.cert, key: next.key });
          logger.info({ notAfter: next.notAfter.toISOString() }, "server certificate renewed");
          schedule(next.notAfter);
        } catch (error) {
          logger.error({ err: error }, "server certificate renewal failed; retrying in 60 s");
          timer = setTimeout(renew, 60_000, notAfter);
          timer.unref();
        }
      };
      schedule(first.notAfter);
      return () => clearTimeout(timer);
    },
  };
}
