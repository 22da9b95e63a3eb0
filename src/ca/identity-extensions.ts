import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import * as asn1X509 from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";

/**
 * The two identity extensions of a client certificate: the grant id at `<arc>.1` and the peer id
 * at `<arc>.2`, each a non-critical extension whose value is a DER UTF8String.
 */
export function identityOids(arc: string): { grant: string; peer: string } {
  return { grant: `${arc}.1`, peer: `${arc}.2` };
}

/** URI SAN that every client certificate carries to identify the peer. */
export function peerUri(peerId: string): string {
  return `urn:uuid:${peerId}`;
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** DER encoding of an ASN.1 UTF8String. */
export function encodeUtf8String(value: string): Buffer {
  const content = Buffer.from(value, "utf8");
  return Buffer.concat([Buffer.from([0x0c]), derLength(content.length), content]);
}

/** Decodes a DER UTF8String; returns undefined for anything else. */
export function decodeUtf8String(der: Uint8Array): string | undefined {
  const bytes = Buffer.from(der);
  if (bytes[0] !== 0x0c || bytes.length < 2) return undefined;
  let length = bytes[1] as number;
  let offset = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count < 1 || count > 4 || bytes.length < 2 + count) return undefined;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (bytes[2 + i] as number);
    offset = 2 + count;
  }
  if (offset + length !== bytes.length) return undefined;
  return bytes.subarray(offset).toString("utf8");
}

/** Parsed forms by OID. The service asks for the two OIDs of its configured arc only. */
const parsedOidForms = new Map<string, string>();

/**
 * The form asn1js gives an OID after a DER round trip. Arcs above 2^53, such as the UUID arcs
 * under 2.25, decode to a hex form rather than decimal, so comparisons go through this form.
 */
function parsedOidForm(oid: string): string {
  let form = parsedOidForms.get(oid);
  if (form === undefined) {
    const der = AsnConvert.serialize(
      new asn1X509.Extension({ extnID: oid, extnValue: new OctetString() }),
    );
    form = AsnConvert.parse(der, asn1X509.Extension).extnID;
    parsedOidForms.set(oid, form);
  }
  return form;
}

/**
 * Reads a UTF8String extension by OID from a parsed certificate; undefined when absent or not a
 * UTF8String. It takes the parsed structure so that a caller reading several extensions parses
 * the certificate once.
 */
export function readUtf8Extension(
  certificate: asn1X509.Certificate,
  oid: string,
): string | undefined {
  const wanted = parsedOidForm(oid);
  const extension = certificate.tbsCertificate.extensions?.find((item) => item.extnID === wanted);
  return extension ? decodeUtf8String(new Uint8Array(extension.extnValue.buffer)) : undefined;
}

/**
 * Adds UTF8String extensions to a certificate and signs it again with ECDSA P-256/SHA-256.
 * X509CertificateGenerator re-parses the extensions it is given, which corrupts OID arcs above
 * 2^53, so these extensions are added to the parsed TBSCertificate with their decimal OIDs.
 */
export async function addUtf8Extensions(
  certificate: x509.X509Certificate,
  extensions: { oid: string; value: string }[],
  signingKey: CryptoKey,
): Promise<x509.X509Certificate> {
  const parsed = AsnConvert.parse(certificate.rawData, asn1X509.Certificate);
  const tbs = parsed.tbsCertificate;
  const added = extensions.map(
    (extension) =>
      new asn1X509.Extension({
        extnID: extension.oid,
        critical: false,
        extnValue: new OctetString(encodeUtf8String(extension.value)),
      }),
  );
  tbs.extensions = new asn1X509.Extensions([...(tbs.extensions ?? []), ...added]);
  const tbsDer = AsnConvert.serialize(tbs);
  const algorithm = { name: "ECDSA", hash: "SHA-256" };
  const rawSignature = await webcrypto.subtle.sign(algorithm, signingKey, tbsDer);
  const signature = new x509.AsnEcSignatureFormatter().toAsnSignature(
    { ...algorithm, ...signingKey.algorithm } as Parameters<
      x509.AsnEcSignatureFormatter["toAsnSignature"]
    >[0],
    rawSignature,
  );
  if (!signature) throw new Error("could not encode the ECDSA signature");
  const signed = new asn1X509.Certificate({
    // The object, not a re-parse of tbsDer: a re-parse would corrupt the OIDs again.
    tbsCertificate: tbs,
    signatureAlgorithm: parsed.signatureAlgorithm,
    signatureValue: signature,
  });
  return new x509.X509Certificate(AsnConvert.serialize(signed));
}
