// The built-in CA's CRL at GET /api/federation/crl, checked with the openssl command line: a grant
// revoked through the API puts its certificate on the CRL, and `openssl verify -crl_check` then
// rejects that certificate while it still accepts one that was not revoked.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { CrlPublisher, crlNumberOf } from "../src/ca/builtin/crl.ts";
import { opensslCsr } from "./support/csr.ts";
import { createTestContext, type TestContext } from "./support/harness.ts";

const execFileAsync = promisify(execFile);
const VALIDITY_SECONDS = 7200;

let ctx: TestContext;
let dir: string;

beforeAll(async () => {
  ctx = await createTestContext({ env: { CRL_VALIDITY_SECONDS: String(VALIDITY_SECONDS) } });
  dir = await mkdtemp(path.join(tmpdir(), "fe-crl-"));
});

afterAll(async () => {
  await ctx.close();
  await rm(dir, { recursive: true, force: true });
});

interface Issued {
  grantId: string;
  serial: string;
  certFile: string;
}

let fileCounter = 0;
async function file(name: string, content: string | Uint8Array): Promise<string> {
  fileCounter += 1;
  const filePath = path.join(dir, `${fileCounter}-${name}`);
  await writeFile(filePath, content);
  return filePath;
}

/** Enrolls a peer with a key made by openssl and writes its certificate to a file. */
async function issue(): Promise<Issued> {
  const enrollment = await ctx.enrollment();
  const { csrPem } = await opensslCsr(enrollment.peer.name);
  const response = await ctx.redeem(enrollment.token, csrPem);
  expect(response.status).toBe(201);
  const body = await response.json();
  return {
    grantId: enrollment.grant.id,
    serial: body.serialNumber,
    certFile: await file("cert.pem", body.certificate),
  };
}

async function openssl(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileAsync("openssl", args);
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, out: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

async function fetchCrl(format?: "pem" | "der") {
  const url = format ? `/api/federation/crl?format=${format}` : "/api/federation/crl";
  return ctx.send("GET", url, undefined, { auth: false });
}

async function crlFiles() {
  const der = await fetchCrl();
  expect(der.status).toBe(200);
  expect(der.headers.get("content-type")).toBe("application/pkix-crl");
  const derBytes = new Uint8Array(await der.arrayBuffer());
  const pem = await fetchCrl("pem");
  expect(pem.status).toBe(200);
  const pemText = await pem.text();
  expect(pemText.startsWith("-----BEGIN X509 CRL-----\n")).toBe(true);
  return {
    derBytes,
    derFile: await file("crl.der", derBytes),
    pemFile: await file("crl.pem", pemText),
    crl: new x509.X509Crl(derBytes),
  };
}

function roots() {
  const keys = ctx.builtinCa.keys;
  return {
    root: `${keys.root.toString("pem").trim()}\n`,
    intermediate: `${keys.intermediate.toString("pem").trim()}\n`,
  };
}

describe("GET /api/federation/crl", () => {
  test("serves a CRL signed by the intermediate, with thisUpdate, nextUpdate and a number", async () => {
    const { derFile, pemFile, crl, derBytes } = await crlFiles();
    const { root, intermediate } = roots();
    const chainFile = await file("chain.pem", intermediate + root);

    // openssl checks the signature against the issuer it finds in -CAfile.
    const verified = await openssl(
      "crl",
      "-inform",
      "DER",
      "-in",
      derFile,
      "-noout",
      "-CAfile",
      chainFile,
    );
    expect(verified).toEqual({ code: 0, out: "verify OK\n" });
    const text = (await openssl("crl", "-inform", "DER", "-in", derFile, "-noout", "-text")).out;
    expect(text).toContain("Version 2 (0x1)");
    expect(text).toContain("Issuer: CN = Federation Enrollment Intermediate CA");
    expect(text).toContain("X509v3 CRL Number:");
    expect(text).toContain("X509v3 Authority Key Identifier:");
    expect(text).toMatch(/Last Update: .+ GMT/);
    expect(text).toMatch(/Next Update: .+ GMT/);

    // thisUpdate is backdated like the certificates; nextUpdate is CRL_VALIDITY_SECONDS ahead.
    const now = Date.now();
    expect(now - crl.thisUpdate.getTime()).toBeGreaterThanOrEqual(59_000);
    expect(now - crl.thisUpdate.getTime()).toBeLessThan(70_000);
    const ahead = (crl.nextUpdate?.getTime() ?? 0) - now;
    expect(ahead).toBeGreaterThan((VALIDITY_SECONDS - 10) * 1000);
    expect(ahead).toBeLessThanOrEqual(VALIDITY_SECONDS * 1000);
    expect(crlNumberOf(crl)).toBeGreaterThanOrEqual(1n);

    // The PEM form holds the same CRL.
    const pemAsDer = path.join(dir, "from-pem.der");
    await openssl("crl", "-in", pemFile, "-outform", "DER", "-out", pemAsDer);
    expect(new Uint8Array(await Bun.file(pemAsDer).arrayBuffer())).toEqual(derBytes);
  });

  test("is public and cacheable, and refuses an unknown format", async () => {
    const response = await fetchCrl();
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("public, max-age=60");
    expect(response.headers.get("etag")).toMatch(/^"crl-\d+"$/);
    const bad = await ctx.send("GET", "/api/federation/crl?format=xml", undefined, { auth: false });
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe("validation_failed");
  });

  test("the built-in CA's certificates point at this route", async () => {
    const issued = await issue();
    const text = (await openssl("x509", "-in", issued.certFile, "-noout", "-text")).out;
    expect(text).toContain("X509v3 CRL Distribution Points:");
    expect(text).toContain("URI:https://enroll.test/api/federation/crl");
  });

  test("lists a certificate whose grant was revoked; openssl verify -crl_check rejects it and accepts the others", async () => {
    const revoked = await issue();
    const kept = await issue();
    const before = (await crlFiles()).crl;

    const response = await ctx.send("POST", `/api/federation/grants/${revoked.grantId}/revoke`, {
      reason: "keyCompromise",
    });
    expect(response.status).toBe(200);
    expect((await response.json()).certRevocation).toBe("done");

    const { derFile, pemFile, crl } = await crlFiles();
    expect(crlNumberOf(crl)).toBeGreaterThan(crlNumberOf(before) as bigint);
    const text = (await openssl("crl", "-inform", "DER", "-in", derFile, "-noout", "-text")).out;
    const entry = text.slice(text.indexOf(`Serial Number: ${revoked.serial.toUpperCase()}`));
    expect(entry).toContain(`Serial Number: ${revoked.serial.toUpperCase()}`);
    expect(entry.split("Serial Number:")[1]).toContain("Key Compromise");
    expect(text).not.toContain(kept.serial.toUpperCase());

    const { root, intermediate } = roots();
    const rootFile = await file("root.pem", root);
    const intermediateFile = await file("intermediate.pem", intermediate);
    const verify = (cert: string) =>
      openssl(
        "verify",
        "-CAfile",
        rootFile,
        "-untrusted",
        intermediateFile,
        "-crl_check",
        "-CRLfile",
        pemFile,
        cert,
      );
    const rejected = await verify(revoked.certFile);
    expect(rejected.code).not.toBe(0);
    expect(rejected.out).toContain("certificate revoked");
    expect(await verify(kept.certFile)).toEqual({ code: 0, out: `${kept.certFile}: OK\n` });

    // Without the CRL both verify: the CRL alone makes the difference.
    const plain = await openssl(
      "verify",
      "-CAfile",
      rootFile,
      "-untrusted",
      intermediateFile,
      revoked.certFile,
    );
    expect(plain.code).toBe(0);
  });

  test("a reason of unspecified leaves the entry without a reason code", async () => {
    const revoked = await issue();
    await ctx.send("POST", `/api/federation/grants/${revoked.grantId}/revoke`);
    const { crl } = await crlFiles();
    const entry = crl.entries.find((item) => item.serialNumber.toLowerCase() === revoked.serial);
    expect(entry).toBeDefined();
    expect(entry?.reason).toBeUndefined();
    const withReason = crl.entries.filter((item) => item.reason !== undefined);
    expect(withReason.length).toBeGreaterThan(0);
  });
});

describe("CrlPublisher", () => {
  test("reuses its CRL until the revocations change or half its validity passed", async () => {
    const publisher = new CrlPublisher(ctx.sql, ctx.builtinCa.keys, { validitySeconds: 1 });
    const first = await publisher.current();
    const [again, alsoAgain] = await Promise.all([publisher.current(), publisher.current()]);
    expect(again.number).toBe(first.number);
    expect(alsoAgain.number).toBe(first.number);

    await new Promise((resolve) => setTimeout(resolve, 600));
    const aged = await publisher.current();
    expect(aged.number).toBeGreaterThan(first.number);

    const slow = new CrlPublisher(ctx.sql, ctx.builtinCa.keys, { validitySeconds: 3600 });
    const cached = await slow.current();
    expect((await slow.current()).number).toBe(cached.number);
    await ctx.builtinCa.revoke("7fabcdef01", "superseded");
    const changed = await slow.current();
    expect(changed.number).toBeGreaterThan(cached.number);
    const entry = new x509.X509Crl(new Uint8Array(changed.der)).entries.find(
      (item) => item.serialNumber.toLowerCase() === "7fabcdef01",
    );
    expect(entry?.reason).toBe(x509.X509CrlReason.superseded);
  });

  test("numbers keep increasing across instances", async () => {
    const a = new CrlPublisher(ctx.sql, ctx.builtinCa.keys, { validitySeconds: 3600 });
    const b = new CrlPublisher(ctx.sql, ctx.builtinCa.keys, { validitySeconds: 3600 });
    const first = await a.current();
    const second = await b.current();
    expect(second.number).toBeGreaterThan(first.number);
  });
});
