// CSRs for tests: in-process with @peculiar/x509 for speed, or with the openssl command line.
import "reflect-metadata";
import { execFile } from "node:child_process";
import { webcrypto } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";

const execFileAsync = promisify(execFile);

export type KeyType = "ec-p256" | "ec-p384" | "ed25519" | "rsa-2048";

const ALGORITHMS: Record<
  KeyType,
  { key: EcKeyGenParams | RsaHashedKeyGenParams | Algorithm; sign: Algorithm | EcdsaParams }
> = {
  "ec-p256": {
    key: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
  },
  "ec-p384": {
    key: { name: "ECDSA", namedCurve: "P-384" },
    sign: { name: "ECDSA", hash: "SHA-384" } as EcdsaParams,
  },
  ed25519: { key: { name: "Ed25519" }, sign: { name: "Ed25519" } },
  "rsa-2048": {
    key: {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    sign: { name: "RSASSA-PKCS1-v1_5" },
  },
};

export interface TestKey {
  keys: CryptoKeyPair;
  keyType: KeyType;
}

export async function generateKey(keyType: KeyType = "ec-p256"): Promise<TestKey> {
  const keys = (await webcrypto.subtle.generateKey(
    ALGORITHMS[keyType].key as EcKeyGenParams,
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  return { keys, keyType };
}

/** Builds a PEM CSR for `key` with the given common name and extra extensions. */
export async function makeCsr(
  key: TestKey,
  options: { commonName?: string; sans?: x509.JsonGeneralNames } = {},
): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: options.commonName === undefined ? "" : `CN=${options.commonName}`,
    keys: key.keys,
    signingAlgorithm: ALGORITHMS[key.keyType].sign,
    extensions: options.sans ? [new x509.SubjectAlternativeNameExtension(options.sans)] : [],
  });
  return csr.toString("pem");
}

/** Key and CSR made by `openssl req`, as a peer following the README would make them. */
export async function opensslCsr(
  commonName: string,
  keyArgs: string[] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
): Promise<{ keyPem: string; csrPem: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), "fe-csr-"));
  try {
    const keyFile = path.join(dir, "key.pem");
    const csrFile = path.join(dir, "csr.pem");
    await execFileAsync("openssl", [
      "req",
      "-new",
      ...keyArgs,
      "-nodes",
      "-keyout",
      keyFile,
      "-subj",
      `/CN=${commonName}`,
      "-out",
      csrFile,
    ]);
    return { keyPem: await readFile(keyFile, "utf8"), csrPem: await readFile(csrFile, "utf8") };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
