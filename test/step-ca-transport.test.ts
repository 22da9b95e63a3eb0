// TLS trust and connection reuse of the step-ca client, under Bun in this process and under Node in
// a child process (`node --import tsx`), since the two runtimes use different HTTP stacks: Bun's
// fetch with its `tls` option, Node's undici with an Agent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { CaError } from "../src/ca/authority.ts";
import { StepCa } from "../src/ca/step-ca/step-ca.ts";
import { createCaTransport, NoResponseError } from "../src/ca/step-ca/transport.ts";
import { opensslCsr } from "./support/csr.ts";
import { startDroppingProxy } from "./support/dropping-proxy.ts";
import { type FakeStepCa, startFakeStepCa } from "./support/fake-step-ca.ts";
import { locateStepCa, type StepCaInstance, startStepCa } from "./support/step-ca.ts";

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, "..");
const probe = path.join(repoRoot, "test/support/step-ca-probe.ts");
const OID_ARC = "1.3.6.1.4.1.32473.1";

const located = await locateStepCa();
if ("skip" in located) console.warn(`skipping step-ca transport tests: ${located.skip}`);

interface ProbeResult {
  runtime: string;
  ok?: boolean;
  status?: number;
  noResponse?: boolean;
  codes?: string[];
  messages?: string[];
  first?: string;
  second?: { ok: boolean; serial?: string; kind?: string; codes?: string[] };
  resets?: number;
}

/** Runs the probe under Node and returns its JSON line. */
async function underNode(mode: string, input: unknown): Promise<ProbeResult> {
  const { stdout } = await execFileAsync(
    "node",
    ["--import", "tsx", probe, mode, JSON.stringify(input)],
    { cwd: repoRoot, timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) as string);
}

describe.skipIf("skip" in located)("step-ca transport", () => {
  let stepCa: StepCaInstance;
  let stranger: FakeStepCa;

  beforeAll(async () => {
    stepCa = await startStepCa();
    // An HTTPS server whose certificate chains to a root the client was not given.
    stranger = await startFakeStepCa({ oidArc: OID_ARC });
  });

  afterAll(async () => {
    await stranger?.stop();
    await stepCa?.stop();
  });

  describe("under Bun", () => {
    test("trusts a server that chains to the configured root", async () => {
      const transport = await createCaTransport(stepCa.rootPem);
      const response = await transport.send({ method: "GET", url: `${stepCa.url}/health` });
      expect(response).toEqual({ status: 200, text: expect.stringContaining('"ok"') });
      await transport.close();
    });

    test("rejects a server that chains to another root", async () => {
      const transport = await createCaTransport(stepCa.rootPem);
      const error = await transport.send({ method: "GET", url: `${stranger.url}/health` }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(NoResponseError);
      expect(String((error as Error).cause)).toMatch(/certificate|issuer|verify/i);

      // And the other way round: step-ca is a stranger to a client that trusts another root.
      const other = await createCaTransport(stranger.rootPem);
      const refused = await other.send({ method: "GET", url: `${stepCa.url}/health` }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(refused).toBeInstanceOf(NoResponseError);
      expect(stranger.signCalls).toBe(0);
    });

    test("the client reports an untrusted step-ca as unavailable, never as ready", async () => {
      const client = await StepCa.open({
        url: stranger.url,
        rootPem: stepCa.rootPem,
        provisionerName: stepCa.provisionerName,
        provisionerKey: JSON.parse(await readFile(stepCa.provisionerKeyPath, "utf8")),
        oidArc: OID_ARC,
      });
      const error = await client.checkReady().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(CaError);
      expect((error as CaError).kind).toBe("unavailable");
    });
  });

  describe("under Node", () => {
    test("trusts a server that chains to the configured root", async () => {
      const result = await underNode("trust", { url: stepCa.url, rootPem: stepCa.rootPem });
      expect(result).toMatchObject({ runtime: "node", ok: true, status: 200 });
    });

    test("rejects a server that chains to another root", async () => {
      const result = await underNode("trust", { url: stranger.url, rootPem: stepCa.rootPem });
      expect(result).toMatchObject({ runtime: "node", ok: false, noResponse: true });
      // Node names the failed verification in the error code.
      expect(result.codes?.join(" ")).toMatch(
        /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT/,
      );

      const reverse = await underNode("trust", { url: stepCa.url, rootPem: stranger.rootPem });
      expect(reverse).toMatchObject({ runtime: "node", ok: false, noResponse: true });
    });
  });

  describe("a pooled connection that step-ca dropped", () => {
    test("under Bun fails the bare transport, and the client retries it on a new one", async () => {
      const proxy = await startDroppingProxy(stepCa.url);
      try {
        // The bare transport: the first request after the loss fails without a response.
        const transport = await createCaTransport(stepCa.rootPem);
        expect((await transport.send({ method: "GET", url: `${proxy.url}/health` })).status).toBe(
          200,
        );
        proxy.dropSilently();
        const error = await transport
          .send({ method: "POST", url: `${proxy.url}/1.0/sign`, body: {} })
          .then(
            () => undefined,
            (caught: unknown) => caught,
          );
        expect(error).toBeInstanceOf(NoResponseError);
        expect(proxy.resets).toBe(1);
        await transport.close();

        // The client: signs, loses its connection, signs again without failing.
        const client = await StepCa.open({
          url: proxy.url,
          rootPem: stepCa.rootPem,
          provisionerName: stepCa.provisionerName,
          provisionerKey: JSON.parse(await readFile(stepCa.provisionerKeyPath, "utf8")),
          oidArc: OID_ARC,
        });
        const { csrPem } = await opensslCsr("peer-reconnect");
        const sign = () =>
          client.sign({
            csrPem,
            commonName: "peer-reconnect",
            peerId: crypto.randomUUID(),
            grantId: crypto.randomUUID(),
            lifetimeSeconds: 3600,
          });
        const first = await sign();
        proxy.dropSilently();
        await stepCa.restart();
        const second = await sign();
        expect(second.serialNumber).not.toBe(first.serialNumber);
        expect(proxy.resets).toBe(2);
        await client.close();
      } finally {
        await proxy.close();
      }
    });

    test("under Node the client retries it on a new one too", async () => {
      const { csrPem } = await opensslCsr("peer-reconnect-node");
      const result = await underNode("reconnect", {
        url: stepCa.url,
        rootPem: stepCa.rootPem,
        provisionerKey: JSON.parse(await readFile(stepCa.provisionerKeyPath, "utf8")),
        provisionerName: stepCa.provisionerName,
        oidArc: OID_ARC,
        csrPem,
        commonName: "peer-reconnect-node",
      });
      expect(result.runtime).toBe("node");
      expect(result.second).toMatchObject({ ok: true });
      expect(result.second?.serial).not.toBe(result.first);
      expect(result.resets).toBe(1);
    });

    test("a refused connection is not retried and maps to unavailable", async () => {
      const proxy = await startDroppingProxy(stepCa.url);
      const client = await StepCa.open({
        url: proxy.url,
        rootPem: stepCa.rootPem,
        provisionerName: stepCa.provisionerName,
        provisionerKey: JSON.parse(await readFile(stepCa.provisionerKeyPath, "utf8")),
        oidArc: OID_ARC,
      });
      await client.checkReady();
      const before = proxy.connections;
      await proxy.refuse();
      const error = await client.checkReady().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect((error as CaError).kind).toBe("unavailable");
      expect(proxy.connections).toBe(before);
      await client.close();
      await proxy.close();
    });
  });
});
