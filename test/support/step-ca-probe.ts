// Exercises the step-ca client in whatever runtime runs this file, so that tests under Bun can
// check it under Node too: `node --import tsx test/support/step-ca-probe.ts <mode> <json>`.
// Prints one JSON line with the result. Modes:
//   trust     {url, rootPem}: GET url/health through the transport that trusts only rootPem
//   reconnect {url, rootPem, provisionerKey, provisionerName, oidArc, csrPem, commonName}:
//             signs through a proxy, loses the pooled connection silently, and signs again
import { randomUUID } from "node:crypto";
import { StepCa } from "../../src/ca/step-ca/step-ca.ts";
import { createCaTransport, NoResponseError } from "../../src/ca/step-ca/transport.ts";
import { startDroppingProxy } from "./dropping-proxy.ts";

function describeError(error: unknown): Record<string, unknown> {
  const chain: { name: string; code?: string; message: string }[] = [];
  let current: unknown = error;
  while (current instanceof Error && chain.length < 5) {
    chain.push({
      name: current.name,
      code: (current as { code?: string }).code,
      message: current.message,
    });
    current = current.cause;
  }
  return {
    noResponse: error instanceof NoResponseError,
    kind: (error as { kind?: string }).kind,
    codes: chain.map((item) => item.code).filter(Boolean),
    messages: chain.map((item) => item.message),
  };
}

async function trust(input: { url: string; rootPem: string }) {
  const transport = await createCaTransport(input.rootPem);
  try {
    const response = await transport.send({
      method: "GET",
      url: `${input.url}/health`,
      signal: AbortSignal.timeout(5000),
    });
    return { ok: true, status: response.status, body: response.text };
  } catch (error) {
    return { ok: false, ...describeError(error) };
  } finally {
    await transport.close();
  }
}

async function reconnect(input: {
  url: string;
  rootPem: string;
  provisionerKey: Record<string, string>;
  provisionerName: string;
  oidArc: string;
  csrPem: string;
  commonName: string;
}) {
  const proxy = await startDroppingProxy(input.url);
  const client = await StepCa.open({
    url: proxy.url,
    rootPem: input.rootPem,
    provisionerName: input.provisionerName,
    provisionerKey: input.provisionerKey,
    oidArc: input.oidArc,
  });
  const sign = () =>
    client.sign({
      csrPem: input.csrPem,
      commonName: input.commonName,
      peerId: randomUUID(),
      grantId: randomUUID(),
      lifetimeSeconds: 3600,
      signal: AbortSignal.timeout(10_000),
    });
  try {
    const first = await sign();
    proxy.dropSilently();
    const second = await sign().then(
      (signed) => ({ ok: true, serial: signed.serialNumber }),
      (error: unknown) => ({ ok: false, ...describeError(error) }),
    );
    return { first: first.serialNumber, second, resets: proxy.resets };
  } finally {
    await client.close();
    await proxy.close();
  }
}

const [mode, json] = process.argv.slice(2);
const input = JSON.parse(json ?? "{}");
const runtime = typeof globalThis.Bun === "undefined" ? "node" : "bun";
const result =
  mode === "trust" ? await trust(input) : mode === "reconnect" ? await reconnect(input) : undefined;
if (!result) throw new Error(`unknown mode ${mode}`);
process.stdout.write(`${JSON.stringify({ runtime, ...result })}\n`);
process.exit(0);
