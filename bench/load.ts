// Closed-loop load: a fixed number of workers, each sending its next request as soon as the
// previous one returned. Runtime-agnostic, so the in-process baselines use it under Bun and Node.

/** One measured run. Latencies are in milliseconds, throughput in requests per second. */
export interface LoadResult {
  name: string;
  concurrency: number;
  requests: number;
  /** Requests that threw or returned a status other than the expected one. */
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

export interface LoadOptions {
  name: string;
  concurrency: number;
  /** The run stops sending after this long; requests in flight still finish. */
  durationMs: number;
  /** Hard bound on requests, such as the number of prepared tokens. */
  maxRequests: number;
  expectedStatus: number;
  /** Sends request number `index` and resolves with its HTTP status (or a pseudo-status). */
  send: (index: number) => Promise<number>;
}

/** Value at quantile `q` of an ascending array, by the nearest-rank method. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(Math.max(rank - 1, 0), sorted.length - 1)] as number;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * Runs `options.concurrency` workers until the duration or the request bound runs out. The first
 * error is kept in `firstError` so that a broken setup shows its cause instead of a low number.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult & { firstError?: string }> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const worker = async () => {
    while (next < options.maxRequests && performance.now() < deadline) {
      const index = next++;
      const sent = performance.now();
      let status: string;
      try {
        status = String(await options.send(index));
      } catch (error) {
        status = "exception";
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      latencies.push(performance.now() - sent);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== String(options.expectedStatus)) errors++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));

  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const total = latencies.reduce((sum, value) => sum + value, 0);
  return {
    name: options.name,
    concurrency: options.concurrency,
    requests: latencies.length,
    errors,
    statuses,
    seconds: round(seconds, 3),
    rps: round(latencies.length / seconds, 1),
    p50Ms: round(percentile(latencies, 0.5), 3),
    p99Ms: round(percentile(latencies, 0.99), 3),
    meanMs: round(total / Math.max(latencies.length, 1), 3),
    ...(firstError ? { firstError } : {}),
  };
}
