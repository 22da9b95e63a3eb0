import { createHash, randomBytes } from "node:crypto";

/**
 * Enrollment tokens look like `fedtok_<43 base62 chars of secret><6 base62 chars of CRC-32>`.
 * The fixed prefix lets secret scanners match them, and the checksum lets scanners and clients
 * tell a mistyped token offline. The redeem route still looks every token up, so that a malformed
 * token is answered as slowly as a used one.
 */
export const TOKEN_PREFIX = "fedtok_";
const SECRET_BYTES = 32;
const SECRET_CHARS = 43; // ceil(256 / log2(62))
const CHECKSUM_CHARS = 6; // ceil(32 / log2(62))
export const TOKEN_LENGTH = TOKEN_PREFIX.length + SECRET_CHARS + CHECKSUM_CHARS;

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TOKEN_PATTERN = new RegExp(`^${TOKEN_PREFIX}[0-9A-Za-z]{${SECRET_CHARS + CHECKSUM_CHARS}}$`);

function toBase62(value: bigint, width: number): string {
  let out = "";
  let rest = value;
  while (rest > 0n) {
    out = ALPHABET[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  return out.padStart(width, "0");
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of Buffer.from(text, "latin1")) {
    crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function checksumOf(body: string): string {
  return toBase62(BigInt(crc32(body)), CHECKSUM_CHARS);
}

/** Generates a new token from 256 bits of the OS CSPRNG. */
export function generateToken(): string {
  const secret = BigInt(`0x${randomBytes(SECRET_BYTES).toString("hex")}`);
  const body = TOKEN_PREFIX + toBase62(secret, SECRET_CHARS);
  return body + checksumOf(body);
}

/** Tells whether `token` has the token format and a matching checksum. Needs no I/O. */
export function isWellFormedToken(token: string): boolean {
  if (token.length !== TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) return false;
  const body = token.slice(0, -CHECKSUM_CHARS);
  return checksumOf(body) === token.slice(-CHECKSUM_CHARS);
}

/** Hex SHA-256 of the token: the only form in which a token is stored. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
