import type { JWK } from "jose";
import {
  CaError,
  type CertificateAuthority,
  normalizeSerial,
  pemBlock,
  REVOCATION_REASONS,
  type RevocationReason,
  type SignedCertificate,
  type SignRequest,
} from "../authority.ts";
import { summarizeCertificate } from "../certificate-summary.ts";
import { certificateFingerprint } from "../fingerprint.ts";
import { encodeUtf8String, identityOids, peerUri } from "../identity-extensions.ts";
import { importProvisionerKey, type ProvisionerKey, signOtt } from "./ott.ts";
import {
  checkOidArcForStepCa,
  type LifetimeLimits,
  limitsFromListing,
} from "./provisioner-limits.ts";
import {
  type CaRequest,
  type CaResponse,
  type CaTransport,
  createCaTransport,
  NoResponseError,
} from "./transport.ts";

export interface StepCaOptions {
  /** Base URL of step-ca, such as https://ca.internal:9000. */
  url: string;
  rootPem: string;
  provisionerName: string;
  /** The JWK provisioner's private key. */
  provisionerKey: JWK;
  oidArc: string;
  /** Bounds calls without their own signal, such as health checks and revocations. */
  timeoutMs?: number;
}

/** Error codes from the network layer that mean step-ca cannot be reached. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "ConnectionRefused",
  "ConnectionClosed",
]);

/**
 * Codes of a connection that was reset or closed under a request. Before any response, that is
 * what a pooled keep-alive connection gives when step-ca dropped it without the client noticing,
 * for example across a restart.
 */
const RESET_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "ConnectionClosed",
]);

/** Retries after a reset before any response; each one uses up a dead pooled connection. */
const MAX_RESET_RETRIES = 2;

function errorCode(error: unknown): string {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && code) return code;
    current = current.cause;
  }
  return "";
}

/** The certificate template in step-ca reads these claims; see templates/step-ca. */
function extensionClaims(request: SignRequest, oidArc: string) {
  const oids = identityOids(oidArc);
  const value = (text: string) => encodeUtf8String(text).toString("base64");
  return {
    federation: {
      extensions: [
        { id: oids.grant, value: value(request.grantId) },
        { id: oids.peer, value: value(request.peerId) },
      ],
    },
  };
}

/**
 * step-ca back end: one-time tokens from a JWK provisioner, POST /1.0/sign, and passive
 * revocation with POST /1.0/revoke. step-ca's own error messages are logged, never passed on.
 */
export class StepCa implements CertificateAuthority {
  readonly kind = "step-ca" as const;
  private readonly rootFingerprint: string;
  private readonly url: string;

  private constructor(
    private readonly options: StepCaOptions,
    private readonly key: ProvisionerKey,
    private readonly transport: CaTransport,
  ) {
    this.url = options.url.replace(/\/+$/, "");
    this.rootFingerprint = certificateFingerprint(options.rootPem);
  }

  private limits: LifetimeLimits | undefined;

  /** Checks the options and imports the key. Does not contact step-ca, which may still be starting. */
  static async open(options: StepCaOptions): Promise<StepCa> {
    checkOidArcForStepCa(options.oidArc);
    const key = await importProvisionerKey(options.provisionerKey);
    return new StepCa(options, key, await createCaTransport(options.rootPem));
  }

  roots(): string[] {
    return [pemBlock(this.options.rootPem)];
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  async checkReady(): Promise<void> {
    const response = await this.call({ method: "GET", url: `${this.url}/health` });
    if (response.status !== 200) {
      throw new CaError("unavailable", `step-ca /health returned status ${response.status}`);
    }
  }

  async sign(request: SignRequest): Promise<SignedCertificate> {
    const audience = `${this.url}/1.0/sign`;
    const ott = () =>
      signOtt(this.key, {
        issuer: this.options.provisionerName,
        subject: request.commonName,
        audience,
        rootFingerprint: this.rootFingerprint,
        sans: [peerUri(request.peerId)],
        extra: extensionClaims(request, this.options.oidArc),
      });
    // step-ca rejects a lifetime outside the provisioner's limits instead of shortening it.
    const limits = await this.lifetimeLimits(request.signal);
    const lifetime = Math.min(
      Math.max(request.lifetimeSeconds, limits.minSeconds),
      limits.maxSeconds,
    );
    const notAfter = new Date(Date.now() + lifetime * 1000).toISOString();
    const response = await this.call(async () => ({
      method: "POST",
      url: audience,
      body: { csr: request.csrPem, ott: await ott(), notAfter },
      signal: request.signal,
    }));
    this.throwForStatus(response, "sign");
    return this.parseSignResponse(response.text);
  }

  private async lifetimeLimits(signal?: AbortSignal): Promise<LifetimeLimits> {
    if (this.limits) return this.limits;
    const response = await this.call({ method: "GET", url: `${this.url}/provisioners`, signal });
    this.throwForStatus(response, "provisioners");
    try {
      this.limits = limitsFromListing(JSON.parse(response.text), this.options.provisionerName);
    } catch (error) {
      throw new CaError("bad_response", "step-ca returned a malformed /provisioners body", {
        cause: error,
      });
    }
    return this.limits;
  }

  async revoke(serialNumber: string, reason: RevocationReason): Promise<void> {
    // step-ca names certificates by their serial in decimal.
    const serial = BigInt(`0x${normalizeSerial(serialNumber)}`).toString(10);
    const audience = `${this.url}/1.0/revoke`;
    const response = await this.call(async () => ({
      method: "POST",
      url: audience,
      body: {
        serial,
        ott: await signOtt(this.key, {
          issuer: this.options.provisionerName,
          subject: serial,
          audience,
          rootFingerprint: this.rootFingerprint,
        }),
        reasonCode: REVOCATION_REASONS[reason],
        reason,
        passive: true,
      },
    }));
    // 0.19 answers 400 for a serial it already revoked; revoking stays idempotent for callers.
    if (response.status === 400 && /already revoked/.test(response.text)) return;
    this.throwForStatus(response, "revoke");
  }

  /**
   * Sends a request built by `build`. A connection reset before any response is retried on a
   * fresh connection, at most MAX_RESET_RETRIES times within the same deadline; `build` runs again
   * for each try, so a request that carries a one-time token carries a new one, as step-ca may
   * have received and spent the first. Nothing was answered, so no certificate was delivered.
   */
  private async call(build: CaRequest | (() => Promise<CaRequest>)): Promise<CaResponse> {
    const next = typeof build === "function" ? build : async () => build;
    let request = await next();
    const signal = request.signal ?? AbortSignal.timeout(this.options.timeoutMs ?? 10_000);
    for (let retries = 0; ; retries += 1) {
      try {
        return await this.transport.send({ ...request, signal });
      } catch (error) {
        const reset = error instanceof NoResponseError && RESET_CODES.has(errorCode(error));
        if (!reset || signal.aborted || retries >= MAX_RESET_RETRIES) {
          throw this.callError(error, request, signal);
        }
        request = await next();
      }
    }
  }

  private callError(error: unknown, request: CaRequest, signal: AbortSignal): CaError {
    if (signal.aborted) {
      return new CaError("timeout", `step-ca did not answer ${request.url} in time`, {
        cause: error,
      });
    }
    const code = errorCode(error);
    if (UNREACHABLE_CODES.has(code)) {
      return new CaError("unavailable", `step-ca is unreachable (${code})`, { cause: error });
    }
    return new CaError("unavailable", `calling step-ca failed${code ? ` (${code})` : ""}`, {
      cause: error,
    });
  }

  private throwForStatus(response: CaResponse, operation: string): void {
    if (response.status >= 200 && response.status < 300) return;
    let message = "";
    try {
      message = String((JSON.parse(response.text) as { message?: unknown }).message ?? "");
    } catch {
      message = response.text.slice(0, 200);
    }
    const kind =
      response.status === 503
        ? "unavailable"
        : response.status >= 500
          ? "bad_response"
          : "rejected";
    throw new CaError(
      kind,
      `step-ca ${operation} failed with status ${response.status}: ${message}`,
      {
        upstreamStatus: response.status,
      },
    );
  }

  private parseSignResponse(text: string): SignedCertificate {
    try {
      const body = JSON.parse(text) as { crt?: unknown; certChain?: unknown; ca?: unknown };
      if (typeof body.crt !== "string") throw new Error("the response has no crt");
      // The native parser: these fields are all this needs, and checkIssuedCertificate parses
      // the certificate in full afterwards.
      const leaf = summarizeCertificate(body.crt);
      const chain = Array.isArray(body.certChain) ? body.certChain.slice(1) : [body.ca];
      if (!chain.every((pem): pem is string => typeof pem === "string")) {
        throw new Error("the response's certificate chain is not PEM text");
      }
      return {
        certificatePem: pemBlock(body.crt),
        chainPem: chain.map(pemBlock),
        serialNumber: leaf.serialNumber,
        notBefore: leaf.notBefore,
        notAfter: leaf.notAfter,
      };
    } catch (error) {
      throw new CaError("bad_response", "step-ca returned a malformed sign body", {
        cause: error,
      });
    }
  }
}
