// A seeded, bounded fuzz loop. It mutates the body bytes, path, query string or Content-Type of
// valid requests to the redeem route and the admin API and sends them in process. The same seed
// sends the same requests, apart from the random tokens in them.
import { generateToken } from "../../src/enrollment/token-format.ts";
import { PROBLEM_CONTENT_TYPE } from "../../src/http/problem.ts";
import type { TestContext } from "./harness.ts";

export interface FuzzOptions {
  ctx: TestContext;
  /** A valid CSR for the redeem requests before mutation. */
  csrPem: string;
  seed: number;
  /** Most requests sent. */
  requests: number;
  /** The loop stops after this many milliseconds even if fewer requests were sent. */
  budgetMs: number;
  requestTimeoutMs: number;
}

export interface FuzzResult {
  sent: number;
  /** One line per response that was a 5xx or a 4xx without a problem+json body, or never came. */
  failures: string[];
}

interface BaseRequest {
  method: string;
  path: string;
  body?: unknown;
  admin: boolean;
}

type Random = () => number;

/** Mulberry32, a small seeded generator, so that a failing run can be replayed from its seed. */
function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

const BYTES = [0x00, 0x0a, 0x22, 0x25, 0x2f, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xc0, 0xff];
const INSERTIONS = [
  ...["\\u0000", "\u0000", "%00", "\\ud800", '{"a":', "[[[[[[[[", "1e309", "-0", "null"],
  ...['"', "\\", "\u202e", "\uffff", '":{"csr":1},"x":"'],
].map((text) => Buffer.from(text));
const RAW_INSERTIONS = [Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80])];
const PATH_INSERTIONS = ["%00", "%2F", "%2f..%2f", "%2e%2e", "%C0%AF", "..", "%", "%25", "%0A"];
const MORE_PATH_INSERTIONS = ["%5C", "/..", "%ZZ", "~", ";", "%FF", "%E2%80%AE", "//", "%01"];
const QUERY_INSERTIONS = ["%00", "%1B", "&limit=0", "&cursor=-1", "&resourceId=", "%26", "%3D"];
const CONTENT_TYPES = [
  "text/plain",
  "",
  "application/json; charset=utf-16",
  "application/problem+json",
  "APPLICATION/JSON",
  "application/json, text/plain",
  "multipart/form-data",
];

function mutateBytes(random: Random, bytes: Buffer): Buffer {
  const at = Math.floor(random() * (bytes.length + 1));
  const operation = Math.floor(random() * 6);
  if (operation === 0 && at < bytes.length) {
    const copy = Buffer.from(bytes);
    copy[at] = (copy[at] as number) ^ (1 << Math.floor(random() * 8));
    return copy;
  }
  if (operation === 1 && at < bytes.length) {
    const copy = Buffer.from(bytes);
    copy[at] = pick(random, BYTES);
    return copy;
  }
  if (operation === 2) {
    const insertion = pick(random, [...INSERTIONS, ...RAW_INSERTIONS]);
    return Buffer.concat([bytes.subarray(0, at), insertion, bytes.subarray(at)]);
  }
  if (operation === 3) {
    const end = Math.min(bytes.length, at + 1 + Math.floor(random() * 64));
    return Buffer.concat([bytes.subarray(0, at), bytes.subarray(end)]);
  }
  if (operation === 4) {
    const end = Math.min(bytes.length, at + 1 + Math.floor(random() * 256));
    return Buffer.concat([bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end)]);
  }
  return bytes.subarray(0, at);
}

/** Inserts into the last path segment, or into the query string when there is one. */
function mutatePath(random: Random, path: string): string {
  const query = path.indexOf("?");
  const start = query >= 0 ? query + 1 : path.lastIndexOf("/") + 1;
  const at = start + Math.floor(random() * (path.length - start + 1));
  const choices = query >= 0 ? QUERY_INSERTIONS : [...PATH_INSERTIONS, ...MORE_PATH_INSERTIONS];
  return path.slice(0, at) + pick(random, choices) + path.slice(at);
}

async function baseRequests(options: FuzzOptions): Promise<(() => BaseRequest)[]> {
  const enrollment = await options.ctx.enrollment();
  const { peer, grant, tokenId } = enrollment;
  const csr = options.csrPem;
  let peerCount = 0;
  return [
    () => ({
      method: "POST",
      path: `/api/federation/enrollment/${enrollment.token}`,
      body: { csr },
      admin: false,
    }),
    () => ({
      method: "POST",
      path: `/api/federation/enrollment/${generateToken()}`,
      body: { csr },
      admin: false,
    }),
    () => {
      peerCount += 1;
      const name = `fuzz-${process.pid}-${peerCount}`;
      const body = { name, endpoint: "https://peer.example/api" };
      return { method: "POST", path: "/api/federation/peers", body, admin: true };
    },
    () => ({
      method: "POST",
      path: "/api/federation/grants",
      body: { peerId: peer.id, scopes: ["orders:read"] },
      admin: true,
    }),
    () => ({
      method: "POST",
      path: "/api/federation/enrollment/tokens",
      body: { grantId: grant.id, ttlSeconds: 900 },
      admin: true,
    }),
    () => ({
      method: "GET",
      path: `/api/federation/audit?resourceId=${tokenId}&limit=10`,
      admin: true,
    }),
    () => ({ method: "GET", path: `/api/federation/peers/${peer.id}`, admin: true }),
    () => ({
      method: "GET",
      path: `/api/federation/enrollment/tokens?grantId=${grant.id}`,
      admin: true,
    }),
  ];
}

/** Sends up to `requests` mutated requests and reports each response that breaks the contract. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const random = mulberry32(options.seed);
  const bases = await baseRequests(options);
  const adminToken = await options.ctx.adminToken();
  const deadline = performance.now() + options.budgetMs;
  const failures: string[] = [];
  let sent = 0;

  for (let i = 0; i < options.requests && performance.now() < deadline; i++) {
    const base = pick(random, bases)();
    let body: Buffer | undefined =
      base.body === undefined ? undefined : Buffer.from(JSON.stringify(base.body));
    let path = base.path;
    let contentType = "application/json";
    const mutations = 1 + Math.floor(random() * 3);
    for (let m = 0; m < mutations; m++) {
      const choice = random();
      if (choice < 0.6 && body) body = mutateBytes(random, body);
      else if (choice < 0.85) path = mutatePath(random, path);
      else contentType = pick(random, CONTENT_TYPES);
    }
    const headers: Record<string, string> = {};
    if (body) headers["content-type"] = contentType;
    if (base.admin) headers.authorization = `Bearer ${adminToken}`;
    const label = `#${i} ${base.method} ${path}`;

    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const request = new Request(`http://localhost${path}`, {
        method: base.method,
        headers,
        body: body ? new Uint8Array(body) : undefined,
      });
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no answer")), options.requestTimeoutMs);
      });
      const response = await Promise.race([options.ctx.app.request(request), hang]);
      sent += 1;
      const text = await response.text();
      const problem = checkAnswer(response, text);
      if (problem) failures.push(`${label}: ${problem}`);
    } catch (error) {
      failures.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      clearTimeout(timer);
    }
  }
  return { sent, failures };
}

function checkAnswer(response: Response, text: string): string | undefined {
  if (response.status >= 500) return `status ${response.status}: ${text.slice(0, 200)}`;
  if (response.status < 400) return undefined;
  if (response.headers.get("content-type") !== PROBLEM_CONTENT_TYPE) {
    return `status ${response.status} without problem+json: ${text.slice(0, 200)}`;
  }
  const body = JSON.parse(text);
  if (typeof body.code !== "string" || typeof body.requestId !== "string") {
    return `problem without code or requestId: ${text.slice(0, 200)}`;
  }
  return undefined;
}
