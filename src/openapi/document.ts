import { readFileSync } from "node:fs";
import { type ZodObject, type ZodType, z } from "zod";
import { PROBLEM_CONTENT_TYPE, PROBLEMS, type ProblemCode } from "../http/problem.ts";
import { RESPONSE_SCHEMAS } from "./responses.ts";
import { API_ROUTES, type ApiRoute } from "./routes.ts";

type Json = Record<string, unknown>;

const PACKAGE_VERSION: string = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
).version;

const SCHEMA_REF_PREFIX = "#/components/schemas/";
/** Formats whose generated regular expression only repeats the format, so the document omits it. */
const SELF_DESCRIBING_FORMATS = new Set(["uuid", "date-time"]);

/**
 * Rewrites zod's output for OpenAPI 3.1: `.meta({ example })` becomes the JSON Schema `examples`
 * keyword, and the long patterns zod adds to uuid and date-time strings are left out.
 */
function override(context: { jsonSchema: Json }): void {
  const schema = context.jsonSchema;
  if ("example" in schema) {
    schema.examples = [schema.example];
    delete schema.example;
  }
  if (SELF_DESCRIBING_FORMATS.has(String(schema.format))) delete schema.pattern;
}

function toJsonSchema(schema: ZodType): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", override }) as Json;
  return rest;
}

/** Collects each field's `.meta({ example })` into one object; fields without one are left out. */
export function exampleOf(schema: ZodObject): Record<string, unknown> {
  const example: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(schema.shape)) {
    const value = (field as ZodType).meta()?.example;
    if (value !== undefined) example[name] = value;
  }
  return example;
}

function parameters(route: ApiRoute): Json[] {
  const list: Json[] = [];
  for (const [location, schema] of [
    ["path", route.params],
    ["query", route.query],
  ] as const) {
    if (!schema) continue;
    const json = toJsonSchema(schema);
    const properties = (json.properties ?? {}) as Record<string, Json>;
    const required = new Set((json.required ?? []) as string[]);
    const examples = exampleOf(schema);
    for (const [name, property] of Object.entries(properties)) {
      const { examples: _, description, ...propertySchema } = property;
      list.push({
        name,
        in: location,
        required: location === "path" || required.has(name),
        ...(description ? { description } : {}),
        schema: propertySchema,
        ...(name in examples ? { example: examples[name] } : {}),
      });
    }
  }
  return list;
}

function problemResponse(codes: ProblemCode[]): Json {
  return {
    description: codes.map((code) => `\`${code}\`: ${PROBLEMS[code][1]}`).join("; "),
    content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: `${SCHEMA_REF_PREFIX}Problem` } } },
  };
}

function responses(route: ApiRoute): Json {
  const result: Record<string, Json> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    const content: Json = {};
    if (response.schema) {
      content["application/json"] = { schema: { $ref: `${SCHEMA_REF_PREFIX}${response.schema}` } };
    }
    for (const mediaType of response.mediaTypes ?? []) content[mediaType] = {};
    result[status] = {
      description: response.description,
      ...(Object.keys(content).length > 0 ? { content } : {}),
    };
  }
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of route.problems) {
    const status = PROBLEMS[code][0];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    result[String(status)] = problemResponse(codes);
  }
  if (route.problems.includes("rate_limited")) {
    (result["429"] as Json).headers = {
      "Retry-After": {
        description: "Seconds until the window resets.",
        schema: { type: "integer" },
      },
    };
  }
  result.default = problemResponse(["internal_error"]);
  return result;
}

const SECURITY: Record<ApiRoute["auth"], Json[]> = {
  admin: [{ adminJwt: [] }],
  // Either no credentials (METRICS_TOKEN unset) or the metrics bearer token.
  metrics: [{}, { metricsToken: [] }],
  none: [],
};

function operation(route: ApiRoute): Json {
  const body = route.body;
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    security: SECURITY[route.auth],
    ...(route.params || route.query ? { parameters: parameters(route) } : {}),
    ...(body
      ? {
          requestBody: {
            required: !route.bodyOptional,
            content: {
              "application/json": { schema: toJsonSchema(body), example: exampleOf(body) },
            },
          },
        }
      : {}),
    responses: responses(route),
  };
}

/** Converts a Hono pattern such as /peers/:id to the OpenAPI form /peers/{id}. */
export function openApiPath(pattern: string): string {
  return pattern.replace(/:(\w+)/g, "{$1}");
}

/** Builds the OpenAPI 3.1 document from API_ROUTES and the zod schemas the routes validate with. */
export function buildOpenApiDocument(options: { serverUrl: string }): Json {
  const paths: Record<string, Json> = {};
  for (const route of API_ROUTES) {
    const path = openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method]: operation(route) };
  }
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(RESPONSE_SCHEMAS)) registry.add(schema, { id });
  const components = z.toJSONSchema(registry, {
    io: "input",
    override,
    uri: (id) => `${SCHEMA_REF_PREFIX}${id}`,
  });
  const schemas: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(components.schemas)) {
    const { $schema: _, $id: __, ...rest } = schema as Json;
    schemas[id] = rest;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Federation enrollment API",
      version: PACKAGE_VERSION,
      description:
        "Admins register peers and grants and create single-use enrollment tokens; a peer trades its token and a CSR for a short-lived mTLS client certificate.",
    },
    servers: [{ url: options.serverUrl }],
    tags: [
      { name: "enrollment", description: "Public routes for peers." },
      { name: "peers" },
      { name: "grants" },
      { name: "tokens" },
      { name: "audit" },
      { name: "operations", description: "Health, readiness, metrics and this document." },
    ],
    paths,
    components: {
      schemas,
      securitySchemes: {
        adminJwt: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "An admin JWT: HS256 with ADMIN_JWT_SECRET, or a key from ADMIN_JWKS_URL. It must carry the ADMIN_JWT_SCOPE scope (federation:admin by default).",
        },
        metricsToken: {
          type: "http",
          scheme: "bearer",
          description: "The METRICS_TOKEN value; /metrics needs it only when METRICS_TOKEN is set.",
        },
      },
    },
  };
}
