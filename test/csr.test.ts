import { describe, expect, test } from "bun:test";
import { CsrError, checkCsrIdentity, MAX_CSR_PEM_BYTES, parseCsr } from "../src/enrollment/csr.ts";
import { generateKey, makeCsr, opensslCsr } from "./support/csr.ts";

const peer = { id: "6f1f7a38-6c1b-4d0c-9a55-3a7c8f1d2e4b", name: "peer-a.example.org" };

async function rejection(pem: string): Promise<string> {
  const error = await parseCsr(pem).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(CsrError);
  return (error as CsrError).message;
}

describe("parseCsr", () => {
  test("accepts an openssl CSR", async () => {
    const { csrPem } = await opensslCsr(peer.name);
    const csr = await parseCsr(csrPem);
    expect(csr.commonName).toBe(peer.name);
    expect(csr.keyType).toBe("ec-p256");
    expect(csr.keyFingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  test("rejects weak and unsupported keys", async () => {
    const cases: [string, string[]][] = [
      ["RSA 1024", ["-newkey", "rsa:1024"]],
      ["P-192", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-192"]],
      ["secp256k1", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"]],
    ];
    for (const [label, args] of cases) {
      const { csrPem } = await opensslCsr(peer.name, args);
      const message = await rejection(csrPem);
      expect({ label, message }).toEqual({ label, message: expect.stringMatching(/key/i) });
    }
  });

  test("rejects a small RSA exponent", async () => {
    const { csrPem } = await opensslCsr(peer.name, [
      "-newkey",
      "rsa:2048",
      "-pkeyopt",
      "rsa_keygen_pubexp:3",
    ]);
    expect(await rejection(csrPem)).toContain("exponent");
  });

  test("rejects a SHA-1 signature", async () => {
    const { csrPem } = await opensslCsr(peer.name, [
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-sha1",
    ]);
    expect(await rejection(csrPem)).toContain("SHA-1");
  });

  test("rejects text around the PEM block", async () => {
    const { csrPem } = await opensslCsr(peer.name);
    expect(await rejection(`${csrPem}trailing`)).toContain("exactly one PEM block");
    expect(await rejection(csrPem + csrPem)).toContain("exactly one PEM block");
  });

  test("accepts RSA 3072", async () => {
    const { csrPem } = await opensslCsr(peer.name, ["-newkey", "rsa:3072"]);
    expect((await parseCsr(csrPem)).keyType).toBe("rsa-3072");
  });

  test("rejects DER and other text", async () => {
    const { csrPem } = await opensslCsr(peer.name);
    const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    expect(await rejection(der.toString("latin1"))).toContain("PEM");
    expect(await rejection("hello")).toContain("PEM");
  });

  test("rejects a CSR over the size limit", async () => {
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${"A".repeat(MAX_CSR_PEM_BYTES)}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(await rejection(pem)).toContain("larger");
  });
});

describe("checkCsrIdentity", () => {
  test("accepts an empty or matching common name", async () => {
    const key = await generateKey();
    const empty = await parseCsr(await makeCsr(key));
    const matching = await parseCsr(await makeCsr(key, { commonName: peer.name }));
    expect(() => checkCsrIdentity(empty, peer)).not.toThrow();
    expect(() => checkCsrIdentity(matching, peer)).not.toThrow();
  });

  test("rejects another common name", async () => {
    const csr = await parseCsr(await makeCsr(await generateKey(), { commonName: "peer-b" }));
    expect(() => checkCsrIdentity(csr, peer)).toThrow(CsrError);
  });

  test("allows only the peer URI SAN", async () => {
    const key = await generateKey();
    const own = await parseCsr(
      await makeCsr(key, { sans: [{ type: "url", value: `urn:uuid:${peer.id}` }] }),
    );
    expect(() => checkCsrIdentity(own, peer)).not.toThrow();
    for (const san of [
      { type: "dns", value: peer.name },
      { type: "url", value: "urn:uuid:00000000-0000-0000-0000-000000000000" },
      { type: "ip", value: "127.0.0.1" },
      { type: "email", value: "admin@example.org" },
    ] as const) {
      const csr = await parseCsr(await makeCsr(key, { sans: [san] }));
      expect(() => checkCsrIdentity(csr, peer)).toThrow(CsrError);
    }
  });
});
