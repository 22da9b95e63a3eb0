// Renders the OpenAPI document as one self-contained HTML page: no scripts, no external styles or
// fonts, so that it works offline and under a Content-Security-Policy of default-src 'none'.

type Json = Record<string, unknown>;

const METHOD_ORDER = ["get", "post", "put", "patch", "delete"];

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Inline `code` spans of the document's descriptions, after escaping. */
function prose(text: unknown): string {
  return escapeHtml(String(text ?? "")).replace(/`([^`]+)`/g, "<code>$1</code>");
}

function pretty(value: unknown): string {
  return `<pre>${escapeHtml(JSON.stringify(value, null, 2))}</pre>`;
}

function schemaLink(schema: unknown): string {
  const ref = (schema as Json | undefined)?.$ref;
  if (typeof ref !== "string") return "";
  const name = ref.split("/").at(-1) as string;
  return ` <a href="#schema-${escapeHtml(name)}">${escapeHtml(name)}</a>`;
}

function renderParameters(parameters: Json[]): string {
  if (parameters.length === 0) return "";
  const rows = parameters.map((parameter) => {
    const required = parameter.required ? "required" : "optional";
    const example = parameter.example === undefined ? "" : escapeHtml(String(parameter.example));
    return `<tr><td><code>${escapeHtml(String(parameter.name))}</code></td><td>${escapeHtml(String(parameter.in))}, ${required}</td><td><code>${escapeHtml(JSON.stringify(parameter.schema))}</code></td><td><code>${example}</code></td></tr>`;
  });
  return `<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Schema</th><th>Example</th></tr>${rows.join("")}</table>`;
}

function renderResponses(responses: Record<string, Json>): string {
  const rows = Object.entries(responses).map(([status, response]) => {
    const content = (response.content ?? {}) as Record<string, Json>;
    const media = Object.entries(content)
      .map(([type, body]) => `<code>${escapeHtml(type)}</code>${schemaLink(body.schema)}`)
      .join(", ");
    return `<tr><td><b>${escapeHtml(status)}</b></td><td>${prose(response.description)}</td><td>${media}</td></tr>`;
  });
  return `<h4>Responses</h4><table><tr><th>Status</th><th>Meaning</th><th>Body</th></tr>${rows.join("")}</table>`;
}

function renderOperation(path: string, method: string, operation: Json): string {
  const security = (operation.security ?? []) as Json[];
  const auth = security.some((entry) => "adminJwt" in entry)
    ? "Admin JWT (Bearer)"
    : security.some((entry) => "metricsToken" in entry)
      ? "METRICS_TOKEN (Bearer), when it is set"
      : "None";
  const body = (operation.requestBody as Json | undefined)?.content as
    | Record<string, Json>
    | undefined;
  const json = body?.["application/json"];
  const requestBody = json
    ? `<h4>Request body</h4><details><summary>Schema</summary>${pretty(json.schema)}</details><p>Example:</p>${pretty(json.example)}`
    : "";
  const id = escapeHtml(String(operation.operationId));
  return `<section class="operation" id="${id}">
<h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
<p>${prose(operation.summary)}</p>
<p><b>Authentication:</b> ${auth}</p>
${renderParameters((operation.parameters ?? []) as Json[])}
${requestBody}
${renderResponses(operation.responses as Record<string, Json>)}
</section>`;
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1b1f24}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f4f5f7;padding:.75rem;overflow:auto}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #d8dbe0;padding:.3rem .5rem;text-align:left;vertical-align:top}
.operation{border-top:1px solid #d8dbe0;padding-top:.5rem}.method{display:inline-block;min-width:4.5rem;text-align:center;border-radius:4px;color:#fff;background:#57606a}
.get{background:#1f6feb}.post{background:#1a7f37}.delete{background:#cf222e}`;

/** Renders the API reference page for `document`, an OpenAPI 3.1 document. */
export function renderDocsPage(document: Json): string {
  const info = document.info as Json;
  const paths = document.paths as Record<string, Record<string, Json>>;
  const tags = (document.tags ?? []) as Json[];
  const sections = tags.map((tag) => {
    const operations: string[] = [];
    for (const [path, methods] of Object.entries(paths)) {
      const entries = Object.entries(methods).sort(
        ([a], [b]) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b),
      );
      for (const [method, operation] of entries) {
        if ((operation.tags as string[]).includes(String(tag.name))) {
          operations.push(renderOperation(path, method, operation));
        }
      }
    }
    const description = tag.description ? `<p>${prose(tag.description)}</p>` : "";
    return `<h2 id="tag-${escapeHtml(String(tag.name))}">${escapeHtml(String(tag.name))}</h2>${description}${operations.join("\n")}`;
  });
  const components = document.components as Json;
  const schemas = Object.entries(components.schemas as Record<string, Json>).map(
    ([name, schema]) =>
      `<h3 id="schema-${escapeHtml(name)}">${escapeHtml(name)}</h3>${pretty(schema)}`,
  );
  const security = Object.entries(components.securitySchemes as Record<string, Json>).map(
    ([name, scheme]) => `<li><b>${escapeHtml(name)}</b>: ${prose(scheme.description)}</li>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(String(info.title))}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(String(info.title))} <small>${escapeHtml(String(info.version))}</small></h1>
<p>${prose(info.description)}</p>
<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI ${escapeHtml(String(document.openapi))}). Errors are <code>application/problem+json</code> (RFC 9457); see <a href="#schema-Problem">Problem</a>.</p>
<h2>Authentication</h2><ul>${security.join("")}</ul>
${sections.join("\n")}
<h2>Schemas</h2>${schemas.join("\n")}
</body></html>`;
}
