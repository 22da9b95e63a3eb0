/** Exit codes of federation-enroll; `--help` prints the same list. */
export const EXIT = {
  /** Enrolled: the files are written. */
  ok: 0,
  /** A bug or an error the command does not recognize. */
  unexpected: 1,
  /** Invalid options or a mistyped token; nothing was sent. */
  usage: 2,
  /** The output directory has a key.pem (without --force) or cannot be written. */
  output: 3,
  /** No served root matches the fingerprint, or the server failed TLS verification. */
  trust: 4,
  /** The token is unknown (404), or used, expired or revoked (410). */
  token: 5,
  /** The service rejected the request otherwise: still rate limited, invalid CSR, other 4xx. */
  rejected: 6,
  /** The service failed (5xx) or could not be reached after the retries. */
  unavailable: 7,
  /** The issued certificate failed verification; nothing was written. */
  verification: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure with the message to print and the exit code to end with. */
export class EnrollError extends Error {
  override name = "EnrollError";

  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Help text lines for the exit codes, in order. */
export const EXIT_CODE_HELP = [
  "  0  enrolled; key.pem, cert.pem, chain.pem and root.pem are written",
  "  1  unexpected error",
  "  2  invalid options or a mistyped token; nothing was sent",
  "  3  DIR/key.pem exists (use --force), or DIR cannot be written",
  "  4  no root served by --url matches --fingerprint, or TLS verification failed",
  "  5  the token is unknown (404), or already used, expired or revoked (410)",
  "  6  the service rejected the request (still rate limited, invalid CSR, other 4xx)",
  "  7  the service failed (5xx) or could not be reached after retries",
  "  8  the issued certificate failed verification; nothing was written",
];
