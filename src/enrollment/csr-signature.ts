import "reflect-metadata";
import { type KeyObject, verify } from "node:crypto";
import type * as x509 from "@peculiar/x509";

/** WebCrypto signature algorithms that node:crypto verifies directly, with the key type each needs. */
const NATIVE_KEY_TYPES: Record<string, string> = {
  ECDSA: "ec",
  "RSASSA-PKCS1-v1_5": "rsa",
  Ed25519: "ed25519",
};

/** The curves WebCrypto's ECDSA supports, by OpenSSL name; verify() fails for any other. */
const WEBCRYPTO_CURVES = new Set(["prime256v1", "secp384r1", "secp521r1"]);

const NATIVE_DIGESTS: Record<string, string> = {
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
};

/** Offset of the content and length of the DER element that starts at `offset`. */
function readElement(der: Uint8Array, offset: number): { content: number; length: number } {
  const first = der[offset + 1];
  if (first === undefined) throw new Error("truncated DER element");
  if (first < 0x80) return { content: offset + 2, length: first };
  const count = first & 0x7f;
  if (count < 1 || count > 4) throw new Error("unsupported DER length");
  let length = 0;
  for (let index = 0; index < count; index++) {
    const byte = der[offset + 2 + index];
    if (byte === undefined) throw new Error("truncated DER length");
    length = length * 256 + byte;
  }
  return { content: offset + 2 + count, length };
}

/**
 * Slices out the DER of the CSR's CertificationRequestInfo, the bytes its signature covers. RFC
 * 2986 defines CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm,
 * signature }.
 */
function signedBytes(der: Uint8Array): Uint8Array {
  const outer = readElement(der, 0);
  const info = readElement(der, outer.content);
  const end = info.content + info.length;
  if (end > der.length) throw new Error("truncated CertificationRequestInfo");
  return der.subarray(outer.content, end);
}

/**
 * Verifies a CSR's self-signature over the signed bytes as received. ECDSA and RSASSA-PKCS1-v1_5
 * with SHA-256, SHA-384 or SHA-512, and Ed25519, go straight to node:crypto. That skips the
 * WebCrypto key import and signature conversion of @peculiar/x509's verify(), which took about
 * 1 ms per CSR on Node 20 in this repository's benchmark (docs/benchmarks.md). Any other
 * algorithm, such as RSA-PSS or SHA-1, goes through verify() as before.
 */
export async function verifyCsrSignature(
  request: x509.Pkcs10CertificateRequest,
  key: KeyObject,
): Promise<boolean> {
  const algorithm = request.signatureAlgorithm as { name: string; hash?: { name?: string } };
  const keyType = NATIVE_KEY_TYPES[algorithm.name];
  const digest = algorithm.name === "Ed25519" ? null : NATIVE_DIGESTS[algorithm.hash?.name ?? ""];
  if (!keyType || digest === undefined) return request.verify();

  // WebCrypto refuses a key of another type or curve, so such a signature fails here too.
  if (key.asymmetricKeyType !== keyType) return false;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (keyType === "ec" && !WEBCRYPTO_CURVES.has(curve ?? "")) return false;
  // ECDSA signatures in a CSR are DER-encoded, which is what dsaEncoding "der" expects.
  return verify(
    digest,
    signedBytes(new Uint8Array(request.rawData)),
    { key, dsaEncoding: "der" },
    Buffer.from(request.signature),
  );
}
