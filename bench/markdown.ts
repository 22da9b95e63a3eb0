// Turns the JSON lines of a benchmark run into the Markdown tables of docs/benchmarks.md.
//
//   npm run --silent bench > results.jsonl
//   node --import tsx bench/markdown.ts results.jsonl
import { readFileSync } from "node:fs";

interface Line {
  kind: string;
  [field: string]: unknown;
}

const file = process.argv[2];
if (!file) {
  console.error("usage: markdown.ts RESULTS.jsonl");
  process.exit(2);
}
const lines = readFileSync(file, "utf8")
  .split("\n")
  .filter((text) => text.startsWith("{"))
  .map((text) => JSON.parse(text) as Line);

function table(header: string[], rows: unknown[][]): string {
  const format = (cells: unknown[]) => `| ${cells.map((cell) => String(cell)).join(" | ")} |`;
  return [format(header), format(header.map(() => "---")), ...rows.map(format)].join("\n");
}

function verdict(met: unknown): string {
  if (met === undefined) return "";
  return met ? "met" : "missed";
}

function cpu(line: Line, name: string): string {
  const value = (line.cpuMsPerRequest as Record<string, number> | undefined)?.[name];
  return value === undefined ? "" : value.toFixed(2);
}

const measurements = lines.filter((line) => line.kind === "measurement");
const comparisons = lines.filter((line) => line.kind === "ratio" || line.kind === "difference");
const suites = [...new Set(measurements.map((line) => String(line.suite)))];

for (const suite of suites) {
  console.log(`\n### ${suite}\n`);
  const rows = measurements
    .filter((line) => line.suite === suite)
    .map((line) => [
      line.runtime,
      line.concurrency,
      line.repeat,
      line.subject,
      line.requests,
      line.errors,
      line.rps,
      line.p50Ms,
      line.p99Ms,
      cpu(line, "service") || cpu(line, "server"),
      cpu(line, "postgres"),
      cpu(line, "stepCa"),
      cpu(line, "loadGenerator"),
    ]);
  const header = ["runtime", "conc.", "rep.", "subject", "requests", "errors", "req/s"];
  header.push("p50 ms", "p99 ms", "server CPU ms/req", "PostgreSQL CPU ms/req");
  header.push("step-ca CPU ms/req", "load gen. CPU ms/req");
  console.log(table(header, rows));

  const compared = comparisons
    .filter((line) => line.suite === suite)
    .map((line) => [
      line.runtime,
      line.concurrency,
      line.repeat,
      line.kind === "ratio" ? "throughput ratio" : "added p50 ms",
      line.value,
      verdict(line.met),
    ]);
  if (compared.length > 0) {
    console.log("");
    console.log(
      table(["runtime", "conc.", "rep.", "service vs baseline", "value", "target"], compared),
    );
  }
}

const values = lines.filter((line) => line.kind === "value");
if (values.length > 0) {
  console.log("\n### resources and start-up\n");
  const rows = values.map((line) => [
    line.suite,
    line.runtime,
    line.metric,
    line.database ?? line.during ?? "",
    line.start ?? "",
    `${line.value} ${line.unit}`,
  ]);
  console.log(table(["suite", "runtime", "metric", "database / during", "start", "value"], rows));
}

const targets = lines.filter((line) => line.kind === "target");
if (targets.length > 0) {
  console.log("\n### targets\n");
  const rows = targets.map((line) => [
    line.name,
    line.target,
    line.worst,
    (line.values as number[]).join(", "),
    verdict(line.met),
  ]);
  console.log(table(["target", "limit", "worst", "all repeats", "result"], rows));
}
