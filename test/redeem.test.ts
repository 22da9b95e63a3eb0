import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { generateKey, makeCsr, opensslCsr } from "./support/csr.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

const execFileAsync = promisify(execFile);

let ctx: TestContext;
let workDir: string;

beforeAll(async () => {
  ctx = await createTestContext();
  workDir = await mkdtemp(path.join(tmpdir(), "fe-redeem-"));
});

afterAll(async () => {
  await ctx.close();
  await rm(workDir, { recursive: true, force: true });
});

async function openssl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("openssl", args);
  return stdout;
}

describe("redeem", () => {
  test("issues a certificate that openssl verifies", async () => {
    const enrollment = await ctx.enrollment();
    const { csrPem } = await opensslCsr(enrollment.peer.name);
    const response = await ctx.redeem(enrollment.token, csrPem);
    expect(response.status).toBe(201);
    const body = await response.json();

    const files = {
      cert: path.join(workDir, "cert.pem"),
      chain: path.join(workDir, "chain.pem"),
      root: path.join(workDir, "root.pem"),
    };
    await writeFile(files.cert, body.certificate);
    await writeFile(files.chain, body.certificateChain);
    await writeFile(files.root, body.caCertificates);
    const verified = await openssl(
      "verify",
      "-CAfile",
      files.root,
      "-untrusted",
      files.chain,
      files.cert,
    );
    expect(verified.trim()).toBe(`${files.cert}: OK`);

    const text = await openssl("x509", "-in", files.cert, "-noout", "-text");
    expect(text).toContain(`Subject: CN = ${enrollment.peer.name}\n`);
    expect(text).toContain(`URI:urn:uuid:${enrollment.peer.id}`);
    expect(text).toContain("TLS Web Client Authentication");
    expect(text).toContain(`${ctx.config.CERT_OID_ARC}.1`);
    expect(text).toContain(`${ctx.config.CERT_OID_ARC}.2`);
    expect(text).toContain(enrollment.grant.id);
    expect(text).toContain(enrollment.peer.id);

    expect(body.serialNumber).toMatch(/^[0-9a-f]+$/);
    expect(body.grant).toEqual({ id: enrollment.grant.id, scopes: ["orders:read"] });
    expect(body.peer).toEqual({ id: enrollment.peer.id, name: enrollment.peer.name });
    const serial = (await openssl("x509", "-in", files.cert, "-noout", "-serial")).trim();
    expect(serial).toBe(`serial=${body.serialNumber.toUpperCase()}`);
  });

  test("backdates notBefore and uses the configured lifetime", async () => {
    const enrollment = await ctx.enrollment();
    const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
    const before = Date.now();
    const body = await (await ctx.redeem(enrollment.token, csr)).json();
    const notBefore = Date.parse(body.notBefore);
    const notAfter = Date.parse(body.notAfter);
    expect(before - notBefore).toBeGreaterThanOrEqual(59_000);
    expect(before - notBefore).toBeLessThan(65_000);
    expect(notAfter - notBefore).toBeGreaterThanOrEqual(
      ctx.config.CERT_TTL_SECONDS * 1000 + 59_000,
    );
    expect(notAfter - notBefore).toBeLessThan(ctx.config.CERT_TTL_SECONDS * 1000 + 65_000);
  });

  test("activates the grant and records the serial on the peer", async () => {
    const enrollment = await ctx.enrollment();
    const csr = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
    const body = await (await ctx.redeem(enrollment.token, csr)).json();

    const grant = await (
      await ctx.send("GET", `/api/federation/grants/${enrollment.grant.id}`)
    ).json();
    expect(grant.status).toBe("active");
    expect(grant.activatedAt).not.toBeNull();
    const peer = await (
      await ctx.send("GET", `/api/federation/peers/${enrollment.peer.id}`)
    ).json();
    expect(peer.certSerial).toBe(body.serialNumber);
    expect(Date.parse(peer.certNotAfter)).toBe(Date.parse(body.notAfter));
    const audit = await (
      await ctx.send("GET", `/api/federation/audit?resourceId=${enrollment.tokenId}`)
    ).json();
    const redeemed = audit.items.find((row: { verb: string }) => row.verb === "enrollment.redeem");
    expect(redeemed.outcome).toBe("success");
    expect(redeemed.statusCode).toBe(201);
    expect(redeemed.detail.serial).toBe(body.serialNumber);
  });

  test("accepts every allowed key type", async () => {
    for (const keyType of ["ec-p256", "ec-p384", "ed25519", "rsa-2048"] as const) {
      const enrollment = await ctx.enrollment();
      const csr = await makeCsr(await generateKey(keyType), { commonName: enrollment.peer.name });
      const response = await ctx.redeem(enrollment.token, csr);
      expect({ keyType, status: response.status }).toEqual({ keyType, status: 201 });
    }
  });

  test("accepts a CSR without a common name", async () => {
    const enrollment = await ctx.enrollment();
    const csr = await makeCsr(await generateKey());
    const response = await ctx.redeem(enrollment.token, csr);
    expect(response.status).toBe(201);
    const body = await response.json();
    expect(body.peer.name).toBe(enrollment.peer.name);
  });

  test("rejects a second redeem of the same token with 410", async () => {
    const enrollment = await ctx.enrollment();
    const key = await generateKey();
    const csr = await makeCsr(key, { commonName: enrollment.peer.name });
    expect((await ctx.redeem(enrollment.token, csr)).status).toBe(201);
    const other = await makeCsr(await generateKey(), { commonName: enrollment.peer.name });
    const second = await ctx.redeem(enrollment.token, other);
    expect(second.status).toBe(410);
    expect(second.headers.get("content-type")).toBe("application/problem+json");
    expect((await second.json()).code).toBe("token_gone");
  });

  test("returns the same certificate to a retry with the same key", async () => {
    const enrollment = await ctx.enrollment();
    const key = await generateKey();
    const first = await (
      await ctx.redeem(enrollment.token, await makeCsr(key, { commonName: enrollment.peer.name }))
    ).json();
    // A fresh CSR for the same key: the signature differs, the public key does not.
    const retry = await ctx.redeem(enrollment.token, await makeCsr(key));
    expect(retry.status).toBe(200);
    const again = await retry.json();
    expect(again.certificate).toBe(first.certificate);
    expect(again.serialNumber).toBe(first.serialNumber);
  });

  test("refuses a retry after the replay window", async () => {
    const enrollment = await ctx.enrollment();
    const key = await generateKey();
    const csr = await makeCsr(key, { commonName: enrollment.peer.name });
    expect((await ctx.redeem(enrollment.token, csr)).status).toBe(201);
    await ctx.sql`
      update federation_enrollment_tokens set used_at = now() - interval '11 minutes'
      where id = ${enrollment.tokenId}
    `;
    expect((await ctx.redeem(enrollment.token, csr)).status).toBe(410);
  });
});
