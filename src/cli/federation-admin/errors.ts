/** Exit codes of federation-admin; `--help` prints the same list. */
export const EXIT = {
  ok: 0,
  /** A bug or an error the command does not recognize. */
  unexpected: 1,
  /** Invalid arguments or missing configuration; nothing was sent. */
  usage: 2,
  /** The service could not be reached, or its certificate failed TLS verification. */
  unreachable: 3,
  /** The service rejected the request with a 4xx problem. */
  rejected: 4,
  /** The service failed with a 5xx problem. */
  failed: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Help text lines for the exit codes, in order. */
export const EXIT_CODE_HELP = [
  "  0  success",
  "  1  unexpected error",
  "  2  invalid arguments, or FEDERATION_URL or FEDERATION_ADMIN_TOKEN missing; nothing was sent",
  "  3  the service could not be reached, or its certificate failed TLS verification",
  "  4  the service rejected the request (4xx); its problem detail is printed",
  "  5  the service failed (5xx); its problem detail and request id are printed",
];

/** A failure with the message to print and the exit code to end with. */
export class AdminError extends Error {
  override name = "AdminError";

  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
