// Baseline for redeem with step-ca: POST /1.0/sign straight to step-ca with the CSR the service
// gets and a fresh one-time token per call, minted with the service's own signOtt.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { encodeUtf8String, identityOids, peerUri } from "../src/ca/identity-extensions.ts";
import { importProvisionerKey, signOtt } from "../src/ca/step-ca/ott.ts";
import type { StepCaInstance } from "../test/support/step-ca.ts";
import { httpTarget } from "./http-client.ts";
import { type LoadResult, runLoad } from "./load.ts";

export interface DirectSignOptions {
  stepCa: StepCaInstance;
  csrPem: string;
  oidArc: string;
  lifetimeSeconds: number;
  concurrency: number;
  durationMs: number;
  /** Tokens minted up front, which bounds the requests of the run. */
  maxRequests: number;
}

/**
 * Mints `count` sign tokens with the claims StepCa.sign puts in them: subject the peer name, the
 * peer URI as the only SAN and the two identity extensions in the `federation` claim.
 */
async function mintSignTokens(options: DirectSignOptions, count: number): Promise<string[]> {
  const key = await importProvisionerKey(
    JSON.parse(await readFile(options.stepCa.provisionerKeyPath, "utf8")),
  );
  const oids = identityOids(options.oidArc);
  const base64 = (text: string) => encodeUtf8String(text).toString("base64");
  const tokens: string[] = [];
  for (let index = 0; index < count; index++) {
    const peerId = randomUUID();
    tokens.push(
      await signOtt(key, {
        issuer: options.stepCa.provisionerName,
        subject: `bench-direct-${index}`,
        audience: `${options.stepCa.url}/1.0/sign`,
        rootFingerprint: options.stepCa.rootFingerprint,
        sans: [peerUri(peerId)],
        extra: {
          federation: {
            extensions: [
              { id: oids.grant, value: base64(randomUUID()) },
              { id: oids.peer, value: base64(peerId) },
            ],
          },
        },
      }),
    );
  }
  return tokens;
}

/** Measures step-ca's sign endpoint alone. Minting happens before the clock starts. */
export async function measureDirectSign(
  name: string,
  options: DirectSignOptions,
): Promise<LoadResult> {
  const tokens = await mintSignTokens(options, options.maxRequests);
  const target = httpTarget(options.stepCa.url, {
    connections: options.concurrency,
    ca: options.stepCa.rootPem,
  });
  try {
    return await runLoad({
      name,
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      maxRequests: tokens.length,
      expectedStatus: 201,
      send: async (index) => {
        // The service computes notAfter the same way, from the clamped lifetime.
        const notAfter = new Date(Date.now() + options.lifetimeSeconds * 1000).toISOString();
        const body = JSON.stringify({ csr: options.csrPem, ott: tokens[index], notAfter });
        const response = await target.send({ method: "POST", path: "/1.0/sign", body });
        return response.status;
      },
    });
  } finally {
    await target.close();
  }
}
