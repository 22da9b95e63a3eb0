import { createHash } from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

/** Lowercase hex SHA-256 of a certificate's DER encoding, the form `step ca bootstrap` pins. */
export function certificateFingerprint(pem: string): string {
  const der = Buffer.from(new x509.X509Certificate(pem).rawData);
  return createHash("sha256").update(der).digest("hex");
}
