// A loopback HTTPS server that speaks step-ca's sign API and can be told to misbehave, for fault
// tests against the real step-ca client. Certificates are really signed, by a built-in CA in a
// temporary directory, so a well-behaved fake answers exactly like step-ca does.
import "reflect-metadata";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { decodeJwt, exportJWK, generateKeyPair } from "jose";
import { BuiltinCa } from "../../src/ca/builtin/builtin-ca.ts";
import { decodeUtf8String } from "../../src/ca/identity-extensions.ts";
import type { Sql } from "../../src/db/connect.ts";
import { generateKey, makeCsr } from "./csr.ts";

/** How the fake answers the next sign calls. */
export type FakeMode =
  | { kind: "ok" }
  | { kind: "slow"; delayMs: number }
  | { kind: "status"; status: number }
  | { kind: "truncated" }
  | { kind: "not-json" }
  | { kind: "wrong-key" }
  | { kind: "wrong-cn" }
  | { kind: "hang-up" };

export interface FakeStepCa {
  url: string;
  rootPem: string;
  /** Private JWK for STEP_CA_PROVISIONER_KEY; the fake does not verify tokens. */
  provisionerKey: Record<string, unknown>;
  provisionerName: string;
  /** Sign requests received, whatever the answer. */
  signCalls: number;
  /** Revoke requests received, with their decimal serials. */
  revokedSerials: string[];
  mode: FakeMode;
  /** Stops listening, so that connections are refused, and closes open sockets. */
  stop(): Promise<void>;
}

interface SignBody {
  csr: string;
  ott: string;
}

async function signFor(ca: BuiltinCa, body: SignBody, mode: FakeMode) {
  const claims = decodeJwt(body.ott) as {
    sub: string;
    sans: string[];
    federation: { extensions: { value: string }[] };
  };
  const [grantExt, peerExt] = claims.federation.extensions;
  const text = (value: string | undefined) =>
    decodeUtf8String(Buffer.from(value ?? "", "base64")) ?? "";
  const csrPem =
    mode.kind === "wrong-key"
      ? await makeCsr(await generateKey(), { commonName: claims.sub })
      : body.csr;
  const signed = await ca.sign({
    csrPem,
    commonName: mode.kind === "wrong-cn" ? "someone-else" : claims.sub,
    peerId: text(peerExt?.value),
    grantId: text(grantExt?.value),
    lifetimeSeconds: 3600,
  });
  return {
    crt: signed.certificatePem,
    ca: signed.chainPem[0],
    certChain: [signed.certificatePem, ...signed.chainPem],
  };
}

/** Starts the fake on 127.0.0.1 with a free port. */
export async function startFakeStepCa(options: { oidArc: string }): Promise<FakeStepCa> {
  const dir = await mkdtemp(path.join(tmpdir(), "fe-fake-step-ca-"));
  // The built-in CA only needs a database to record revocations, which the fake never does.
  const ca = await BuiltinCa.open(undefined as unknown as Sql, {
    dir,
    oidArc: options.oidArc,
    publicUrl: "https://127.0.0.1",
  });
  const tls = await ca.issueServerCertificate(["127.0.0.1", "localhost"], 3600);
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const provisionerKey = { ...(await exportJWK(privateKey)), kid: "fake-kid", alg: "ES256" };
  const sockets = new Set<Socket>();

  const fake: FakeStepCa = {
    url: "",
    rootPem: ca.roots()[0] as string,
    provisionerKey,
    provisionerName: "fake-provisioner",
    signCalls: 0,
    revokedSerials: [],
    mode: { kind: "ok" },
    stop: async () => {},
  };

  const server: Server = createServer(
    { cert: tls.cert, key: tls.key },
    async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const send = (status: number, body: unknown) => {
        response.writeHead(status, { "content-type": "application/json" });
        response.end(JSON.stringify(body));
      };
      if (request.url === "/health") return send(200, { status: "ok" });
      if (request.url === "/provisioners") return send(200, { provisioners: [] });
      if (request.url === "/1.0/revoke") {
        fake.revokedSerials.push(JSON.parse(Buffer.concat(chunks).toString()).serial);
        return send(200, { status: "ok" });
      }
      if (request.url !== "/1.0/sign") return send(404, { status: 404, message: "not found" });

      fake.signCalls += 1;
      const mode = fake.mode;
      if (mode.kind === "slow") await new Promise((resolve) => setTimeout(resolve, mode.delayMs));
      if (mode.kind === "hang-up") return request.socket.destroy();
      if (mode.kind === "status")
        return send(mode.status, { status: mode.status, message: "fake failure" });
      if (mode.kind === "not-json") {
        response.writeHead(201, { "content-type": "text/html" });
        return response.end("<html>gateway</html>");
      }
      const body = await signFor(ca, JSON.parse(Buffer.concat(chunks).toString()), mode);
      if (mode.kind === "truncated") {
        response.writeHead(201, { "content-type": "application/json" });
        return response.end(JSON.stringify(body).slice(0, 120));
      }
      return send(201, body);
    },
  );
  server.on("secureConnection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.stop = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    await rm(dir, { recursive: true, force: true });
  };
  return fake;
}

/** Parses a PEM certificate, for assertions on what the fake returned. */
export function parseCertificate(pem: string): x509.X509Certificate {
  return new x509.X509Certificate(pem);
}
