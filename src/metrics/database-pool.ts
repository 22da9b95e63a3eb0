import { Gauge, type Registry } from "prom-client";
import type { Sql } from "../db/connect.ts";

/**
 * Adds gauges that read the postgres.js pool's own counters (`sql.stats`, postgres.js 4) at each
 * scrape. A connection is in use while it runs at least one query or is reserved by a transaction.
 * Because postgres.js pipelines queries, one connection in use may carry several queries.
 */
export function registerPoolMetrics(registry: Registry, sql: Sql): void {
  new Gauge({
    name: "federation_db_pool_connections",
    help: "Database pool connections: in_use (running queries or held by a transaction), idle, or opening.",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const stats = sql.stats;
      this.set({ state: "in_use" }, stats.connections - stats.idle);
      this.set({ state: "idle" }, stats.idle);
      this.set({ state: "opening" }, stats.opening);
    },
  });

  new Gauge({
    name: "federation_db_pool_waiting_queries",
    help: "Queries queued for a database connection because every allowed connection is busy.",
    registers: [registry],
    collect() {
      this.set(sql.stats.waiting);
    },
  });

  new Gauge({
    name: "federation_db_pool_max_connections",
    help: "Largest number of connections the pool opens (DATABASE_POOL_MAX; 1 for PGlite).",
    registers: [registry],
    collect() {
      this.set(sql.options.max);
    },
  });
}
