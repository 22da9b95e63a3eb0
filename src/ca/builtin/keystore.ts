import "reflect-metadata";
import { randomBytes, webcrypto } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import * as x509 from "@peculiar/x509";

const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
export const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;

const ROOT_YEARS = 10;
const INTERMEDIATE_YEARS = 5;

/** The built-in CA's root and intermediate. Only the intermediate's key signs leaves. */
export interface CaKeys {
  root: x509.X509Certificate;
  intermediate: x509.X509Certificate;
  intermediateKey: CryptoKey;
}

const FILES = {
  rootCert: "root.crt",
  rootKey: "root.key",
  intermediateCert: "intermediate.crt",
  intermediateKey: "intermediate.key",
};

function yearsFromNow(years: number): Date {
  const date = new Date();
  date.setUTCFullYear(date.getUTCFullYear() + years);
  return date;
}

function toPem(der: ArrayBuffer, label: string): string {
  return x509.PemConverter.encode(der, label);
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

async function generate(dir: string): Promise<void> {
  const rootKeys = await generateKeyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString("hex").replace(/^./, "1"),
    name: "CN=Federation Enrollment Root CA",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: yearsFromNow(ROOT_YEARS),
    keys: rootKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const intermediateKeys = await generateKeyPair();
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(16).toString("hex").replace(/^./, "1"),
    subject: "CN=Federation Enrollment Intermediate CA",
    issuer: root.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: yearsFromNow(INTERMEDIATE_YEARS),
    publicKey: intermediateKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(intermediateKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root),
    ],
  });
  const exportKey = async (key: CryptoKey) =>
    toPem(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");

  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, FILES.rootCert), root.toString("pem"), { mode: 0o644 });
  await writeFile(path.join(dir, FILES.rootKey), await exportKey(rootKeys.privateKey), {
    mode: 0o600,
  });
  await writeFile(path.join(dir, FILES.intermediateCert), intermediate.toString("pem"), {
    mode: 0o644,
  });
  await writeFile(
    path.join(dir, FILES.intermediateKey),
    await exportKey(intermediateKeys.privateKey),
    {
      mode: 0o600,
    },
  );
}

async function load(dir: string): Promise<CaKeys> {
  const read = (name: string) => readFile(path.join(dir, name), "utf8");
  const keyDer = x509.PemConverter.decodeFirst(await read(FILES.intermediateKey));
  const intermediateKey = await webcrypto.subtle.importKey("pkcs8", keyDer, EC_P256, false, [
    "sign",
  ]);
  return {
    root: new x509.X509Certificate(await read(FILES.rootCert)),
    intermediate: new x509.X509Certificate(await read(FILES.intermediateCert)),
    intermediateKey: intermediateKey as CryptoKey,
  };
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && codes.includes((error as NodeJS.ErrnoException).code ?? "");
}

/**
 * Loads the CA from `dir`, generating a root and an intermediate (ECDSA P-256) on first use.
 * Keys are written with mode 0600. Generation happens in a temporary directory that is renamed
 * into place, so instances that start together never see a half-written CA.
 */
export async function loadOrCreateCaKeys(dir: string): Promise<CaKeys> {
  try {
    return await load(dir);
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
  }
  const staging = `${dir}.${randomBytes(6).toString("hex")}.tmp`;
  await generate(staging);
  try {
    await rename(staging, dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (!isErrno(error, "EEXIST", "ENOTEMPTY")) throw error;
  }
  return load(dir);
}
