import pino, { type Logger } from "pino";

export type { Logger };

/**
 * Creates the service logger: JSON lines on stdout, or pretty-printed for development. Header
 * values that carry credentials are redacted wherever they appear.
 */
export function createLogger(options: { level: string; pretty?: boolean }): Logger {
  return pino({
    level: options.level,
    base: { service: "federation-enrollment" },
    redact: {
      paths: ["*.authorization", "*.headers.authorization", "*.token", "*.jwt", "*.privateKey"],
      censor: "[redacted]",
    },
    transport: options.pretty ? { target: "pino-pretty", options: { colorize: true } } : undefined,
  });
}
