// Summarizes a .cpuprofile written by `node --cpu-prof` or `bun --cpu-prof`: the functions with
// the most self time and the most inclusive time. BENCH_CPU_PROFILE_DIR makes bench/main.ts
// write one per service it starts.
//
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--from FUNCTION] [--top N]
//
// --from skips the samples before the first one whose stack contains FUNCTION, such as "issue",
// so that start-up does not dilute the redeem path. Bun's profiler records the time between
// samples, so a function that was waiting when a sample was taken also collects time there. For
// CPU shares, read the Node profile.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { from: { type: "string" }, top: { type: "string", default: "30" } },
});
const file = positionals[0];
if (!file) {
  console.error("usage: profile-summary.ts FILE.cpuprofile [--from FUNCTION] [--top N]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const top = Number(values.top);

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parentOf = new Map<number, number>();
for (const node of profile.nodes) {
  for (const child of node.children ?? []) parentOf.set(child, node.id);
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.includes("node_modules/")
    ? url.replace(/^.*node_modules\//, "")
    : url.replace(/^.*?\/(src|bench|test)\//, "$1/");
  return `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
}

function stack(id: number): ProfileNode[] {
  const nodes: ProfileNode[] = [];
  for (let current: number | undefined = id; current !== undefined; ) {
    const node = byId.get(current);
    if (!node) break;
    nodes.push(node);
    current = parentOf.get(current);
  }
  return nodes;
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let totalUs = 0;
let started = values.from === undefined;
profile.samples.forEach((id, index) => {
  const frames = stack(id);
  started ||= frames.some((node) => node.callFrame.functionName === values.from);
  if (!started) return;
  const us = profile.timeDeltas[index] ?? 0;
  totalUs += us;
  const [leaf] = frames;
  if (leaf) self.set(label(leaf), (self.get(label(leaf)) ?? 0) + us);
  for (const name of new Set(frames.map(label))) {
    inclusive.set(name, (inclusive.get(name) ?? 0) + us);
  }
});

function print(title: string, table: Map<string, number>): void {
  console.log(`\n${title}`);
  const rows = [...table].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, us] of rows) {
    const ms = (us / 1000).toFixed(0).padStart(7);
    const share = ((100 * us) / totalUs).toFixed(1).padStart(5);
    console.log(`${ms} ms ${share}%  ${name}`);
  }
}

console.log(`${(totalUs / 1000).toFixed(0)} ms sampled in ${file}`);
print("self time", self);
print("inclusive time", inclusive);
