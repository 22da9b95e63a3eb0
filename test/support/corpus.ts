// Loads the hostile input corpus in test/corpus (see its README.md) and builds requests from it.
import { expect } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { generateToken } from "../../src/enrollment/token-format.ts";
import { PROBLEM_CONTENT_TYPE } from "../../src/http/problem.ts";

export const CORPUS_DIR = path.resolve(import.meta.dirname, "../corpus");

export interface Expectation {
  status: number;
  code?: string;
  /** A substring of the problem's detail. */
  detail?: string;
}

export type TextPart = string | { repeat: string; count: number };

export interface CorpusCase {
  name: string;
  method?: string;
  path: string;
  contentType?: string | null;
  json?: unknown;
  text?: string | TextPart[];
  base64?: string;
  stream?: boolean;
  contentLength?: string;
  expect: Expectation;
  http?: boolean;
}

export interface RawCase {
  name: string;
  target?: string;
  targetBase64?: string;
  text?: string;
  contentLength?: string;
  chunked?: boolean;
  expect: Expectation;
  bun?: Expectation;
  node?: Expectation;
}

/** Values for the `{{name}}` templates; those of an enrollment exist only when a case needs one. */
export interface TemplateValues {
  token?: string;
  peerName?: string;
  peerId?: string;
  grantId?: string;
  unknownToken: string;
  badChecksumToken: string;
}

/** Reads every JSON file in a corpus folder, in name order. */
export function loadCorpus<T>(folder: string): { file: string; cases: T[] }[] {
  const dir = path.join(CORPUS_DIR, folder);
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => ({
      file: `${folder}/${name.replace(/\.json$/, "")}`,
      cases: JSON.parse(readFileSync(path.join(dir, name), "utf8")).cases as T[],
    }));
}

/** Reads a PEM file from test/corpus/csr. */
export function corpusPem(name: string): string {
  return readFileSync(path.join(CORPUS_DIR, "csr", name), "utf8");
}

/** Returns a token with the right prefix, length and alphabet whose checksum does not match. */
export function badChecksumToken(): string {
  const token = generateToken();
  const last = token.at(-1) === "0" ? "1" : "0";
  return token.slice(0, -1) + last;
}

export function templateValues(enrollment?: Partial<TemplateValues>): TemplateValues {
  return { unknownToken: generateToken(), badChecksumToken: badChecksumToken(), ...enrollment };
}

/** Tells whether a case refers to a real enrollment, which the caller must then create. */
export function needsEnrollment(value: unknown): boolean {
  return /\{\{(token|peerName|peerId|grantId)\}\}/.test(JSON.stringify(value));
}

export function fill(text: string, values: TemplateValues): string {
  return text.replace(/\{\{(\w+)(?::([^}]+))?\}\}/g, (_match, name: string, argument?: string) => {
    if (name === "csr") return corpusPem(argument ?? "");
    if (name === "csrDer") {
      return corpusPem(argument ?? "")
        .replace(/-----[A-Z ]+-----/g, "")
        .replace(/\s+/g, "");
    }
    const value = values[name as keyof TemplateValues];
    if (value === undefined) throw new Error(`corpus template {{${name}}} has no value`);
    return value;
  });
}

function fillJson(value: unknown, values: TemplateValues): unknown {
  if (typeof value === "string") return fill(value, values);
  if (Array.isArray(value)) return value.map((item) => fillJson(item, values));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, fillJson(item, values)]),
    );
  }
  return value;
}

/** Builds the request body of a case as bytes, or undefined when it sends none. */
export function caseBody(c: CorpusCase, values: TemplateValues): Buffer | undefined {
  if (c.base64 !== undefined) return Buffer.from(c.base64, "base64");
  if (c.json !== undefined) return Buffer.from(JSON.stringify(fillJson(c.json, values)));
  if (c.text === undefined) return undefined;
  const parts = typeof c.text === "string" ? [c.text] : c.text;
  const text = parts
    .map((part) => (typeof part === "string" ? fill(part, values) : part.repeat.repeat(part.count)))
    .join("");
  return Buffer.from(text);
}

/** Returns the Content-Type and Content-Length headers of a case. Streams get no Content-Length. */
export function caseHeaders(c: CorpusCase, body: Buffer | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  const contentType = c.contentType === undefined ? "application/json" : c.contentType;
  if (body !== undefined && contentType !== null) headers["content-type"] = contentType;
  if (body !== undefined && !c.stream) {
    headers["content-length"] = c.contentLength ?? String(body.byteLength);
  }
  return headers;
}

/** Wraps a body in a stream of 16 KiB chunks, so that its size is not known until it ends. */
export function chunkedStream(body: Buffer): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= body.byteLength) return controller.close();
      controller.enqueue(body.subarray(offset, offset + 16 * 1024));
      offset += 16 * 1024;
    },
  });
}

/**
 * Checks a response against a case's expectation, one assertion per property: the status, the
 * problem+json content type, the code, a non-empty requestId and, when given, a detail substring.
 */
export function expectProblem(
  answer: { status: number; contentType: string | null | undefined; body: string },
  expected: Expectation,
): void {
  expect({ status: answer.status, body: answer.body.slice(0, 300) }).toMatchObject({
    status: expected.status,
  });
  expect(answer.contentType).toBe(PROBLEM_CONTENT_TYPE);
  const body = JSON.parse(answer.body);
  if (expected.code) expect(body.code).toBe(expected.code);
  expect(typeof body.requestId).toBe("string");
  expect(body.requestId.length).toBeGreaterThan(0);
  if (expected.detail) expect(body.detail).toContain(expected.detail);
}
