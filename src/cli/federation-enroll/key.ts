import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { KeyType } from "./args.ts";

/** Web Crypto parameters for each key type: key generation, then CSR signing. */
const ALGORITHMS: Record<
  KeyType,
  { generate: EcKeyGenParams | RsaHashedKeyGenParams | Algorithm; sign: Algorithm | EcdsaParams }
> = {
  "ec-p256": {
    generate: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
  },
  "ec-p384": {
    generate: { name: "ECDSA", namedCurve: "P-384" },
    sign: { name: "ECDSA", hash: "SHA-384" } as EcdsaParams,
  },
  ed25519: { generate: { name: "Ed25519" }, sign: { name: "Ed25519" } },
  "rsa-3072": {
    generate: {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 3072,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    sign: { name: "RSASSA-PKCS1-v1_5" },
  },
};

/** A key pair made on this machine and the CSR that proves possession of it. */
export interface PeerKey {
  keyType: KeyType;
  /** PKCS#8 PEM. Written to key.pem only; never sent. */
  privateKeyPem: string;
  /** DER SubjectPublicKeyInfo, to compare with the issued certificate's key. */
  spki: Buffer;
  csrPem: string;
}

/**
 * Generates a private key and a CSR for it. The CSR has an empty subject: the peer learns its name
 * only from the redeem response, and the service accepts an empty common name because it takes
 * the certificate's whole identity from its database, never from the CSR.
 */
export async function generatePeerKey(keyType: KeyType): Promise<PeerKey> {
  const algorithm = ALGORITHMS[keyType];
  const keys = (await webcrypto.subtle.generateKey(algorithm.generate as EcKeyGenParams, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "",
    keys,
    signingAlgorithm: algorithm.sign,
  });
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  const spki = await webcrypto.subtle.exportKey("spki", keys.publicKey);
  return {
    keyType,
    privateKeyPem: `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`,
    spki: Buffer.from(spki),
    csrPem: csr.toString("pem"),
  };
}
