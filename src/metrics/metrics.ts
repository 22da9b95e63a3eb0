import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { RequestObserver } from "../http/middleware/request-log.ts";
import type { RedeemOutcome } from "../repository/redeem.ts";
import { isBun } from "../server/listen.ts";

/** Redeem outcomes, each exported from the first scrape on so that rate() counts its first event. */
export const REDEEM_OUTCOMES = [
  "issued",
  "replayed",
  "gone",
  "not_found",
  "invalid_csr",
  "ca_error",
  "lost_claim",
  "rate_limited",
] as const satisfies readonly (RedeemOutcome | "rate_limited")[];

export type RedeemMetricOutcome = (typeof REDEEM_OUTCOMES)[number];

const REDEEM_ROUTE = "/api/federation/enrollment/:token";

/** Methods kept as label values; any other method is counted as "other", to bound the series. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * prom-client reads these from perf_hooks.monitorEventLoopDelay, whose histogram Bun 1.4 never
 * fills: under Bun they report a minimum of 2^63 ns and NaN. nodejs_eventloop_lag_seconds is
 * measured with setImmediate and stays.
 */
const EVENT_LOOP_DELAY_SERIES = ["min", "max", "mean", "stddev", "p50", "p90", "p99"].map(
  (name) => `nodejs_eventloop_lag_${name}_seconds`,
);

/**
 * The service's Prometheus metrics, in a registry of their own rather than prom-client's global
 * one. No label carries a token, a peer or a grant: routes are patterns, and outcomes and results
 * come from closed sets.
 */
export class ServiceMetrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: "federation_http_requests_total",
    help: "HTTP requests served, by method, route pattern and response status.",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: "federation_http_request_duration_seconds",
    help: "Time from receiving a request to its response, by method and route pattern.",
    labelNames: ["method", "route"] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [this.registry],
  });

  readonly redeemOutcomes = new Counter({
    name: "federation_redeem_outcomes_total",
    help: "Redeem requests by outcome; rate_limited requests never reach the redeem logic.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly caSignDuration = new Histogram({
    name: "federation_ca_sign_duration_seconds",
    help: "Duration of certificate signing calls to the CA, by CA kind and result.",
    labelNames: ["ca", "result"] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [this.registry],
  });

  readonly tokensCreated = new Counter({
    name: "federation_enrollment_tokens_created_total",
    help: "Enrollment tokens created through the admin API.",
    registers: [this.registry],
  });

  readonly tokensRevoked = new Counter({
    name: "federation_enrollment_tokens_revoked_total",
    help: "Token revoke requests that returned 204, including repeats for an already revoked token.",
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    for (const outcome of REDEEM_OUTCOMES) this.redeemOutcomes.inc({ outcome }, 0);
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      if (isBun) for (const name of EVENT_LOOP_DELAY_SERIES) this.registry.removeSingleMetric(name);
    }
  }

  /** Counts a finished request; passed to the request log middleware as its observer. */
  readonly observeRequest: RequestObserver = (entry) => {
    const method = KNOWN_METHODS.has(entry.method) ? entry.method : "other";
    const status = String(entry.status);
    this.httpRequests.inc({ method, route: entry.route, status });
    this.httpDuration.observe({ method, route: entry.route }, entry.seconds);

    if (entry.route === REDEEM_ROUTE && entry.outcome === "rate_limited") {
      this.redeemOutcomes.inc({ outcome: "rate_limited" });
    }
    // Token counters follow the admin API's responses, so that they need no hook in the repository.
    if (
      method === "POST" &&
      entry.route === "/api/federation/enrollment/tokens" &&
      status === "201"
    ) {
      this.tokensCreated.inc();
    }
    if (
      method === "DELETE" &&
      entry.route === "/api/federation/enrollment/tokens/:id" &&
      status === "204"
    ) {
      this.tokensRevoked.inc();
    }
  };

  /** Counts a redeem outcome; passed to the app as its onRedeemOutcome hook. */
  readonly observeRedeemOutcome = (outcome: RedeemOutcome): void => {
    this.redeemOutcomes.inc({ outcome });
  };

  /** Renders every metric in the Prometheus text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
