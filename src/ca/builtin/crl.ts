import "reflect-metadata";
import { AsnConvert } from "@peculiar/asn1-schema";
import * as asn1X509 from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import type { Sql } from "../../db/connect.ts";
import { BACKDATE_MS } from "./builtin-ca.ts";
import { type CaKeys, SIGNING_ALGORITHM } from "./keystore.ts";

/** One revoked certificate, as the built-in CA stores it in federation_ca_revocations. */
export interface CrlEntry {
  /** Lowercase hex, as BuiltinCa.revoke stores it. */
  serial: string;
  revokedAt: Date;
  /** RFC 5280 CRLReason code. */
  reasonCode: number;
}

export interface CrlContent {
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

/** DER of a CRLNumber extension value: an INTEGER, which may exceed 2^53. */
function crlNumberExtension(number: bigint): x509.Extension {
  let hex = number.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  // A leading byte of 0x80 or more would read as negative.
  if (Number.parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  const content = Buffer.from(hex, "hex");
  const der = Buffer.concat([Buffer.from([0x02, content.length]), content]);
  return new x509.Extension(asn1X509.id_ce_cRLNumber, false, der);
}

/**
 * Builds a CRL (RFC 5280 v2) signed by the intermediate, the issuer of every client certificate:
 * the authority key identifier, the CRL number, and one entry per revoked serial. The reason code
 * extension is left out for `unspecified`, as RFC 5280 5.3.1 recommends.
 */
export async function buildCrl(keys: CaKeys, content: CrlContent): Promise<x509.X509Crl> {
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(keys.intermediate);
  return x509.X509CrlGenerator.create({
    issuer: keys.intermediate.subject,
    thisUpdate: content.thisUpdate,
    nextUpdate: content.nextUpdate,
    signingKey: keys.intermediateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [authorityKeyId, crlNumberExtension(content.number)],
    entries: content.entries.map((entry) => ({
      serialNumber: entry.serial,
      revocationDate: entry.revokedAt,
      reason: entry.reasonCode === 0 ? undefined : (entry.reasonCode as x509.X509CrlReason),
    })),
  });
}

/** Reads the CRL number of a CRL, for tests and logs. */
export function crlNumberOf(crl: x509.X509Crl): bigint | undefined {
  const extension = crl.extensions.find((item) => item.type === asn1X509.id_ce_cRLNumber);
  if (!extension) return undefined;
  const der = Buffer.from(extension.value);
  if (der[0] !== 0x02) return undefined;
  const parsed = AsnConvert.parse(der, asn1X509.CRLNumber);
  return BigInt(parsed.value);
}

export interface PublishedCrl {
  der: Buffer;
  pem: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
}

/**
 * Serves the built-in CA's current CRL. A CRL is generated when the set of revocations changed
 * or half of the current one's validity has passed, so clients that cache until nextUpdate still
 * see a fresh list often; otherwise the cached CRL is served. Each generated CRL takes the next
 * value of a database sequence as its number, so numbers increase across instances too.
 */
export class CrlPublisher {
  private cached: { revocations: number; generatedAt: number; crl: PublishedCrl } | undefined;
  private generating: Promise<PublishedCrl> | undefined;

  constructor(
    private readonly db: Sql,
    private readonly keys: CaKeys,
    private readonly options: { validitySeconds: number },
  ) {}

  async current(): Promise<PublishedCrl> {
    const [state] = await this.db<{ revocations: number }[]>`
      select count(*)::int as revocations from federation_ca_revocations
    `;
    const revocations = state?.revocations ?? 0;
    const cached = this.cached;
    const halfLife = (this.options.validitySeconds * 1000) / 2;
    if (
      cached &&
      cached.revocations === revocations &&
      Date.now() < cached.generatedAt + halfLife
    ) {
      return cached.crl;
    }
    this.generating ??= this.generate().finally(() => {
      this.generating = undefined;
    });
    return this.generating;
  }

  private async generate(): Promise<PublishedCrl> {
    // Entries and their count come from one snapshot, so a revocation that commits meanwhile
    // makes the next request generate again.
    const { entries, number } = await this.db.begin(
      "isolation level repeatable read",
      async (tx) => {
        const entries = await tx<CrlEntry[]>`
        select serial, revoked_at, reason_code from federation_ca_revocations order by revoked_at, serial
      `;
        const [row] = await tx<{ number: string }[]>`
        select nextval('federation_crl_number_seq')::text as number
      `;
        return { entries: [...entries], number: BigInt(row?.number ?? "1") };
      },
    );
    const now = Date.now();
    const thisUpdate = new Date(now - BACKDATE_MS);
    const nextUpdate = new Date(now + this.options.validitySeconds * 1000);
    const crl = await buildCrl(this.keys, { number, thisUpdate, nextUpdate, entries });
    const der = Buffer.from(crl.rawData);
    const published: PublishedCrl = {
      der,
      // RFC 7468's label; openssl reads no other.
      pem: `${x509.PemConverter.encode(crl.rawData, "X509 CRL").trim()}\n`,
      number,
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate ?? nextUpdate,
    };
    this.cached = { revocations: entries.length, generatedAt: now, crl: published };
    return published;
  }
}
