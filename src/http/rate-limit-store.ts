import type { Db } from "../db/connect.ts";

export interface WindowCount {
  /** Requests counted in the current window, this one included. */
  hits: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

/** Counts requests per key in fixed windows. */
export interface RateLimitStore {
  hit(key: string, windowSeconds: number): Promise<WindowCount>;
}

/** Most keys kept in memory before expired windows are swept; bounds memory under a flood. */
const MEMORY_SWEEP_THRESHOLD = 10_000;

/** Counts in process memory: the single-instance default. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { start: number; hits: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async hit(key: string, windowSeconds: number): Promise<WindowCount> {
    const now = this.now();
    const windowMs = windowSeconds * 1000;
    if (this.windows.size >= MEMORY_SWEEP_THRESHOLD) this.sweep(now, windowMs);
    let window = this.windows.get(key);
    if (!window || now - window.start >= windowMs) {
      window = { start: now, hits: 0 };
      this.windows.set(key, window);
    }
    window.hits += 1;
    return { hits: window.hits, resetSeconds: Math.ceil((window.start + windowMs - now) / 1000) };
  }

  private sweep(now: number, windowMs: number): void {
    for (const [key, window] of this.windows) {
      if (now - window.start >= windowMs) this.windows.delete(key);
    }
  }
}

/**
 * Counts in PostgreSQL, so that instances sharing a database share the limit. One upsert both
 * starts a new window and counts, which keeps concurrent hits from different instances exact.
 */
export class PostgresRateLimitStore implements RateLimitStore {
  constructor(private readonly db: Db) {}

  async hit(key: string, windowSeconds: number): Promise<WindowCount> {
    const [row] = await this.db<{ hits: number; resetSeconds: number }[]>`
      insert into federation_rate_limits as r (key, window_start, hits)
      values (${key}, now(), 1)
      on conflict (key) do update set
        window_start = case
          when r.window_start <= now() - make_interval(secs => ${windowSeconds}) then now()
          else r.window_start end,
        hits = case
          when r.window_start <= now() - make_interval(secs => ${windowSeconds}) then 1
          else r.hits + 1 end
      returning hits,
        ceil(extract(epoch from r.window_start + make_interval(secs => ${windowSeconds}) - now()))::int
          as reset_seconds
    `;
    if (!row) throw new Error("rate limit upsert returned no row");
    return row;
  }
}
