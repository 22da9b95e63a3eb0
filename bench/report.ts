// Output of the benchmark: one JSON line per measurement and per ratio on stdout, and at the end
// one line per target with the worst ratio of its repeats. Progress goes to stderr.
import type { LoadResult } from "./load.ts";

export interface MeasurementLabels {
  suite: string;
  runtime: string;
  /** The measured side: the service, or the baseline it is compared with. */
  subject: string;
  repeat: number;
}

export interface Target {
  name: string;
  /** ">=" for a floor such as a throughput ratio, "<=" for a ceiling such as added latency. */
  compare: ">=" | "<=";
  limit: number;
  unit: string;
}

interface TargetCheck {
  target: Target;
  values: number[];
}

export function progress(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export class Report {
  private readonly checks = new Map<string, TargetCheck>();

  /** Prints a load measurement, with CPU milliseconds per request when `cpuMs` is given. */
  measurement(labels: MeasurementLabels, result: LoadResult, cpuMs?: Record<string, number>): void {
    const perRequest = cpuMs
      ? Object.fromEntries(
          Object.entries(cpuMs).map(([name, ms]) => [name, round(ms / result.requests, 2)]),
        )
      : undefined;
    this.print({
      kind: "measurement",
      ...labels,
      ...result,
      ...(perRequest ? { cpuMsPerRequest: perRequest } : {}),
    });
    if (result.errors > 0) {
      progress(`${labels.suite} ${labels.subject}: ${result.errors} unexpected responses`);
    }
  }

  /** Prints a value such as peak RSS or startup time, and checks it when `target` is given. */
  value(labels: Record<string, unknown>, value: number, unit: string, target?: Target): void {
    const met = target ? this.check(target, value) : undefined;
    this.print({ kind: "value", ...labels, value: round(value, 1), unit, ...metFields(met) });
  }

  /**
   * Prints service against baseline as a ratio (rps) or a difference (latency), and checks it
   * against `target` when given.
   */
  compare(
    labels: Record<string, unknown>,
    metric: "rps" | "p50Ms",
    service: LoadResult,
    baseline: LoadResult,
    target?: Target,
  ): void {
    const value = metric === "rps" ? service.rps / baseline.rps : service.p50Ms - baseline.p50Ms;
    const met = target ? this.check(target, value) : undefined;
    this.print({
      kind: metric === "rps" ? "ratio" : "difference",
      ...labels,
      metric,
      service: service[metric],
      baseline: baseline[metric],
      value: round(value),
      ...metFields(met),
    });
  }

  /** Prints each target with the worst value over its repeats; returns the number missed. */
  summary(): number {
    let missed = 0;
    for (const { target, values } of this.checks.values()) {
      const worst = target.compare === ">=" ? Math.min(...values) : Math.max(...values);
      const met = this.passes(target, worst);
      if (!met) missed++;
      this.print({
        kind: "target",
        name: target.name,
        target: `${target.compare} ${target.limit}${target.unit ? ` ${target.unit}` : ""}`,
        worst: round(worst),
        values: values.map((value) => round(value)),
        met,
      });
    }
    return missed;
  }

  private check(target: Target, value: number): boolean {
    const entry = this.checks.get(target.name) ?? { target, values: [] };
    entry.values.push(value);
    this.checks.set(target.name, entry);
    return this.passes(target, value);
  }

  private passes(target: Target, value: number): boolean {
    return target.compare === ">=" ? value >= target.limit : value <= target.limit;
  }

  private print(record: Record<string, unknown>): void {
    console.log(JSON.stringify(record));
  }
}

function metFields(met: boolean | undefined) {
  return met === undefined ? {} : { met };
}
