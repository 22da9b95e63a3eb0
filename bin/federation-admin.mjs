#!/usr/bin/env node
// Launcher for federation-admin that runs the TypeScript entry under Node or Bun. Bun runs
// TypeScript itself; Node needs tsx's ESM loader registered before the import.
if (typeof globalThis.Bun === "undefined") {
  const { register } = await import("tsx/esm/api");
  register();
}
await import("../src/cli/federation-admin/main.ts");
