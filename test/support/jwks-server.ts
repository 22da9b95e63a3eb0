// A JWKS endpoint on 127.0.0.1 for admin authentication tests, with RS256, ES256 and EdDSA keys,
// and paths that fail the way an identity provider's endpoint can.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

export type AsymmetricAlg = "RS256" | "ES256" | "EdDSA";

export interface SigningKey {
  alg: AsymmetricAlg;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export interface JwksServer {
  /** Serves the key set. */
  url: string;
  /** Returns status 500. */
  failingUrl: string;
  /** Returns status 200 with an HTML page. */
  htmlUrl: string;
  keys: Record<AsymmetricAlg, SigningKey>;
  close(): Promise<void>;
}

async function signingKey(alg: AsymmetricAlg): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  const kid = `test-${alg.toLowerCase()}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

export async function startJwksServer(): Promise<JwksServer> {
  const keys = {
    RS256: await signingKey("RS256"),
    ES256: await signingKey("ES256"),
    EdDSA: await signingKey("EdDSA"),
  };
  const keySet = JSON.stringify({ keys: Object.values(keys).map((key) => key.publicJwk) });
  const server: Server = createServer((request, response) => {
    if (request.url === "/jwks.json") {
      response.writeHead(200, { "content-type": "application/json" }).end(keySet);
    } else if (request.url === "/failing/jwks.json") {
      response.writeHead(500, { "content-type": "text/plain" }).end("internal error");
    } else if (request.url === "/html/jwks.json") {
      response.writeHead(200, { "content-type": "text/html" }).end("<html>login</html>");
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${base}/jwks.json`,
    failingUrl: `${base}/failing/jwks.json`,
    htmlUrl: `${base}/html/jwks.json`,
    keys,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Returns a URL on 127.0.0.1 where nothing listens: a port that was just bound and released. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/jwks.json`;
}

export interface ClaimOptions {
  issuer?: string;
  audience?: string;
  subject?: string;
  /** Seconds from now; negative is in the past. */
  expiresIn?: number;
  notBeforeIn?: number;
  extra?: Record<string, unknown>;
}

/** Signs an admin JWT with `key` (a private CryptoKey, or HS256 secret bytes). */
export function signJwt(
  header: { alg: string; kid?: string } & Record<string, unknown>,
  key: CryptoKey | Uint8Array,
  options: ClaimOptions = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ scope: "federation:admin", ...options.extra })
    .setProtectedHeader({ typ: "JWT", ...header })
    .setSubject(options.subject ?? "admin@test")
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 300));
  if (options.notBeforeIn !== undefined) jwt = jwt.setNotBefore(now + options.notBeforeIn);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(key);
}

/** Builds an unsigned JWT (`alg: none`) by hand, because jose refuses to. */
export function unsecuredJwt(payload: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "none", typ: "JWT" })}.${encode(payload)}.`;
}
