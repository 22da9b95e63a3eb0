import "reflect-metadata";
import { randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import type { Db } from "../../db/connect.ts";
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
import { addUtf8Extensions, identityOids, peerUri } from "../identity-extensions.ts";
import { type CaKeys, loadOrCreateCaKeys, SIGNING_ALGORITHM } from "./keystore.ts";

/** NotBefore is backdated so that peers with a slightly slow clock accept the certificate. */
export const BACKDATE_MS = 60_000;

export interface BuiltinCaOptions {
  /** Directory of the CA's certificates and keys, normally DATA_DIR/ca. */
  dir: string;
  oidArc: string;
  /** Base URL of this service; certificates point to its CRL. */
  publicUrl: string;
}

/** A positive 128-bit serial with a non-zero first byte, so its hex form has a fixed length. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
  return bytes.toString("hex");
}

/** The embedded CA: signs in-process with the intermediate key and keeps revocations in the database. */
export class BuiltinCa implements CertificateAuthority {
  readonly kind = "builtin" as const;

  private constructor(
    private readonly db: Db,
    readonly keys: CaKeys,
    private readonly options: BuiltinCaOptions,
  ) {}

  static async open(db: Db, options: BuiltinCaOptions): Promise<BuiltinCa> {
    return new BuiltinCa(db, await loadOrCreateCaKeys(options.dir), options);
  }

  get crlUrl(): string {
    return `${this.options.publicUrl}/api/federation/crl`;
  }

  roots(): string[] {
    return [pemBlock(this.keys.root.toString("pem"))];
  }

  async checkReady(): Promise<void> {
    if (this.keys.intermediate.notAfter.getTime() <= Date.now()) {
      throw new CaError("internal", "the built-in intermediate certificate has expired");
    }
  }

  async sign(request: SignRequest): Promise<SignedCertificate> {
    const csr = new x509.Pkcs10CertificateRequest(request.csrPem);
    const oids = identityOids(this.options.oidArc);
    const notBefore = new Date(Date.now() - BACKDATE_MS);
    const notAfter = new Date(
      Math.min(
        Date.now() + request.lifetimeSeconds * 1000,
        this.keys.intermediate.notAfter.getTime(),
      ),
    );
    try {
      const base = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: [{ CN: [request.commonName] }],
        issuer: this.keys.intermediate.subject,
        notBefore,
        notAfter,
        publicKey: csr.publicKey,
        signingKey: this.keys.intermediateKey,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([
            { type: "url", value: peerUri(request.peerId) },
          ]),
          await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(this.keys.intermediate),
          new x509.CRLDistributionPointsExtension([this.crlUrl]),
        ],
      });
      const certificate = await addUtf8Extensions(
        base,
        [
          { oid: oids.grant, value: request.grantId },
          { oid: oids.peer, value: request.peerId },
        ],
        this.keys.intermediateKey,
      );
      return {
        certificatePem: pemBlock(certificate.toString("pem")),
        chainPem: [pemBlock(this.keys.intermediate.toString("pem"))],
        serialNumber: normalizeSerial(certificate.serialNumber),
        notBefore: certificate.notBefore,
        notAfter: certificate.notAfter,
      };
    } catch (error) {
      throw new CaError("internal", "the built-in CA failed to sign", { cause: error });
    }
  }

  /**
   * Issues a TLS server certificate for this service's own HTTPS listener, with a new ECDSA P-256
   * key. `hosts` are DNS names or IP addresses.
   */
  async issueServerCertificate(
    hosts: string[],
    lifetimeSeconds: number,
  ): Promise<{ cert: string; key: string; notAfter: Date }> {
    const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const names = hosts.map((host) => ({
      type: isIP(host) ? ("ip" as const) : ("dns" as const),
      value: host,
    }));
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: [{ CN: [hosts[0] ?? "localhost"] }],
      issuer: this.keys.intermediate.subject,
      notBefore: new Date(Date.now() - BACKDATE_MS),
      notAfter: new Date(Date.now() + lifetimeSeconds * 1000),
      publicKey: keys.publicKey,
      signingKey: this.keys.intermediateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(names),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.intermediate),
      ],
    });
    const keyDer = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
    return {
      // The chain goes with the leaf so that clients that pin only the root can build the path.
      cert:
        pemBlock(certificate.toString("pem")) + pemBlock(this.keys.intermediate.toString("pem")),
      key: pemBlock(x509.PemConverter.encode(keyDer, "PRIVATE KEY")),
      notAfter: certificate.notAfter,
    };
  }

  async revoke(serialNumber: string, reason: RevocationReason): Promise<void> {
    await this.db`
      insert into federation_ca_revocations (serial, reason_code)
      values (${normalizeSerial(serialNumber)}, ${REVOCATION_REASONS[reason]})
      on conflict (serial) do nothing
    `;
  }
}
