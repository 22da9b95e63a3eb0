import {
  attemptCertRevocation,
  type CertRevocationDeps,
  claimDueRevocations,
  RETRIER_ACTOR,
} from "../repository/revoke-grant.ts";

/** Revocations taken per round; the rest wait for the next round. */
const BATCH_SIZE = 20;

export interface RetryRound {
  attempted: number;
  revoked: number;
  failed: number;
}

/**
 * One round of the retrier: takes the due pending CA revocations (safe to run on several
 * instances at once) and makes one attempt at each.
 */
export async function retryDueRevocations(
  deps: CertRevocationDeps,
  batchSize = BATCH_SIZE,
): Promise<RetryRound> {
  const round: RetryRound = { attempted: 0, revoked: 0, failed: 0 };
  for (const pending of await claimDueRevocations(deps, batchSize)) {
    round.attempted += 1;
    const revoked = await attemptCertRevocation(deps, pending, {
      actor: RETRIER_ACTOR,
      requestId: null,
    });
    if (revoked) round.revoked += 1;
    else round.failed += 1;
  }
  return round;
}

export interface RevocationRetrier {
  /** Runs a round now, after any round in progress; resolves with its counts. */
  runNow(): Promise<RetryRound>;
  /** Stops scheduling and waits for a round in progress. */
  stop(): Promise<void>;
}

/**
 * Retries pending CA revocations in the background every `intervalSeconds` until stopped. A round
 * that fails, for example while the database is down, is logged and the next one runs as planned.
 */
export function startRevocationRetrier(
  deps: CertRevocationDeps,
  options: { intervalSeconds: number },
): RevocationRetrier {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Promise<RetryRound> = Promise.resolve({ attempted: 0, revoked: 0, failed: 0 });

  const run = (): Promise<RetryRound> => {
    const next = current
      .catch(() => undefined)
      .then(() => retryDueRevocations(deps))
      .then((round) => {
        if (round.attempted > 0) deps.logger.info(round, "revocation retrier round");
        return round;
      });
    current = next;
    return next;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      run()
        .catch((error: unknown) => {
          deps.logger.error({ err: error }, "revocation retrier round failed");
        })
        .finally(schedule);
    }, options.intervalSeconds * 1000);
    timer.unref?.();
  };
  schedule();

  return {
    runNow: run,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current.catch(() => undefined);
    },
  };
}
