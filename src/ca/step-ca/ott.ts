import { randomUUID } from "node:crypto";
import { importJWK, type JWK, SignJWT } from "jose";

/** Longest lifetime of a one-time token; step-ca rejects longer ones. */
const OTT_LIFETIME_SECONDS = 5 * 60;

export interface ProvisionerKey {
  kid: string;
  key: CryptoKey | Uint8Array;
}

/** Imports the JWK provisioner's private key. Throws when it is not an EC P-256 private JWK. */
export async function importProvisionerKey(jwk: JWK): Promise<ProvisionerKey> {
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d) {
    throw new Error("the provisioner key must be an EC P-256 private JWK");
  }
  if (!jwk.kid) throw new Error("the provisioner key has no kid");
  return { kid: jwk.kid, key: await importJWK(jwk, "ES256") };
}

export interface OttClaims {
  issuer: string;
  subject: string;
  audience: string;
  rootFingerprint: string;
  sans?: string[];
  extra?: Record<string, unknown>;
}

/** Signs a step-ca one-time token (ES256, `kid` = the provisioner key's id). */
export function signOtt(key: ProvisionerKey, claims: OttClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sha: claims.rootFingerprint, sans: claims.sans, ...claims.extra })
    .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" })
    .setIssuer(claims.issuer)
    .setSubject(claims.subject)
    .setAudience(claims.audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + OTT_LIFETIME_SECONDS)
    .sign(key.key);
}
