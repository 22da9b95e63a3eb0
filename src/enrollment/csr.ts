import "reflect-metadata";
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { peerUri } from "../ca/identity-extensions.ts";
import { verifyCsrSignature } from "./csr-signature.ts";

/** Largest CSR PEM accepted. An RSA-8192 CSR is about 2.6 KB of PEM. */
export const MAX_CSR_PEM_BYTES = 16 * 1024;

const PEM_PATTERN =
  /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

/** A CSR whose structure, key and self-signature passed; its identity is not checked yet. */
export interface ParsedCsr {
  pem: string;
  request: x509.Pkcs10CertificateRequest;
  /** Common name from the subject, or "" when absent. */
  commonName: string;
  /** Subject alternative names requested in the CSR's extension request. */
  sans: { type: string; value: string }[];
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo. */
  keyFingerprint: string;
  keyType: string;
}

/** A CSR that fails a check. Its message is safe to show to the client. */
export class CsrError extends Error {
  override name = "CsrError";
}

const KEY_TYPE_NOT_ALLOWED =
  "the CSR's key type is not allowed: use ECDSA P-256 or P-384, Ed25519, or RSA 2048-8192";

/** Imports the CSR's public key once, for the key type check and the signature check. */
function importPublicKey(spki: Buffer): KeyObject {
  try {
    return createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch {
    // Bun 1.4 cannot import curves such as P-192 or secp256k1, which Node names and rejects below.
    throw new CsrError(KEY_TYPE_NOT_ALLOWED);
  }
}

/**
 * Names the key if it is one of the allowed types: ECDSA P-256 or P-384, Ed25519, or RSA with a
 * 2048 to 8192 bit modulus. Anything else, such as RSA-1024, P-192 or DSA, is rejected.
 */
function checkKeyType(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "ec":
      if (details.namedCurve === "prime256v1") return "ec-p256";
      if (details.namedCurve === "secp384r1") return "ec-p384";
      throw new CsrError("ECDSA keys must use curve P-256 or P-384");
    case "ed25519":
      return "ed25519";
    case "rsa": {
      const bits = details.modulusLength ?? 0;
      if (bits < 2048 || bits > 8192) {
        throw new CsrError(`RSA keys must be 2048 to 8192 bits, got ${bits}`);
      }
      // Small exponents such as 3 invite the attacks that 65537 became the norm to avoid.
      if ((details.publicExponent ?? 0n) < 65537n) {
        throw new CsrError("RSA keys must use a public exponent of at least 65537");
      }
      return `rsa-${bits}`;
    }
    default:
      throw new CsrError(KEY_TYPE_NOT_ALLOWED);
  }
}

function readSans(request: x509.Pkcs10CertificateRequest): ParsedCsr["sans"] {
  // getExtension() does not find extensions inside a CSR's extensionRequest, so search the list.
  const extension = request.extensions.find(
    (item): item is x509.SubjectAlternativeNameExtension =>
      item instanceof x509.SubjectAlternativeNameExtension,
  );
  if (!extension) return [];
  return extension.names.items.map((name) => ({ type: name.type, value: name.value }));
}

/**
 * Parses a PEM CSR and checks what can be checked without the database: the size, the PEM
 * framing, the DER structure, the key type and the self-signature (proof of possession).
 */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  if (Buffer.byteLength(pem, "utf8") > MAX_CSR_PEM_BYTES) {
    throw new CsrError(`the CSR is larger than ${MAX_CSR_PEM_BYTES} bytes`);
  }
  if (!PEM_PATTERN.test(pem)) {
    throw new CsrError(
      "the CSR must be exactly one PEM block, -----BEGIN CERTIFICATE REQUEST----- to -----END CERTIFICATE REQUEST-----, with nothing around it",
    );
  }
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    throw new CsrError("the CSR is not a valid PKCS#10 structure");
  }
  const spki = Buffer.from(request.publicKey.rawData);
  const key = importPublicKey(spki);
  const keyType = checkKeyType(key);
  // SHA-1 signatures can be forged with chosen-prefix collisions, so they prove nothing.
  if (request.signatureAlgorithm.hash?.name === "SHA-1") {
    throw new CsrError("the CSR must be signed with SHA-256 or stronger, not SHA-1");
  }
  let signatureValid = false;
  try {
    signatureValid = await verifyCsrSignature(request, key);
  } catch {
    signatureValid = false;
  }
  if (!signatureValid) throw new CsrError("the CSR's signature does not verify");

  let commonName = "";
  let sans: ParsedCsr["sans"];
  try {
    const names = request.subjectName.getField("CN");
    if (names.length > 1) throw new CsrError("the CSR subject has more than one common name");
    commonName = names[0] ?? "";
    sans = readSans(request);
  } catch (error) {
    if (error instanceof CsrError) throw error;
    throw new CsrError("the CSR's subject or extensions cannot be read");
  }
  const keyFingerprint = createHash("sha256").update(spki).digest("hex");
  return { pem, request, commonName, sans, spki, keyFingerprint, keyType };
}

/**
 * Checks the CSR's requested identity against the peer it is redeemed for. The common name must
 * be empty or the peer name, and the only SAN allowed is the peer URI that the service sets
 * anyway. The certificate's identity is taken from the database, never from the CSR.
 */
export function checkCsrIdentity(csr: ParsedCsr, peer: { id: string; name: string }): void {
  if (csr.commonName !== "" && csr.commonName !== peer.name) {
    throw new CsrError(`the CSR's common name must be empty or "${peer.name}"`);
  }
  const allowedUri = peerUri(peer.id);
  for (const san of csr.sans) {
    if (!(san.type === "url" && san.value === allowedUri)) {
      throw new CsrError(
        `the CSR may not request subject alternative names other than ${allowedUri}`,
      );
    }
  }
}
