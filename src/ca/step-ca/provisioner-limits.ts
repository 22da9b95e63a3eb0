/** Certificate lifetime limits of a step-ca provisioner, in seconds. */
export interface LifetimeLimits {
  minSeconds: number;
  maxSeconds: number;
}

/** step-ca's own defaults when a provisioner and the authority set no claims (step-ca 0.19). */
export const STEP_CA_DEFAULT_LIMITS: LifetimeLimits = { minSeconds: 5 * 60, maxSeconds: 24 * 3600 };

const UNIT_SECONDS: Record<string, number> = {
  h: 3600,
  m: 60,
  s: 1,
  ms: 1e-3,
  us: 1e-6,
  µs: 1e-6,
  ns: 1e-9,
};

/** Parses a Go duration string such as "24h0m0s"; undefined when it is not one. */
export function parseGoDuration(text: unknown): number | undefined {
  if (typeof text !== "string" || !/^(\d+(\.\d+)?(h|ms|us|µs|ns|m|s))+$/.test(text))
    return undefined;
  let seconds = 0;
  for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(h|ms|us|µs|ns|m|s)/g)) {
    seconds += Number(amount) * (UNIT_SECONDS[unit as string] as number);
  }
  return seconds;
}

interface ProvisionerListing {
  provisioners?: { name?: string; type?: string; claims?: Record<string, unknown> }[];
}

/**
 * Reads a JWK provisioner's lifetime limits from step-ca's GET /provisioners body. Missing claims
 * fall back to step-ca's defaults.
 */
export function limitsFromListing(body: unknown, provisionerName: string): LifetimeLimits {
  const listing = body as ProvisionerListing;
  const provisioner = listing.provisioners?.find(
    (item) => item.name === provisionerName && item.type?.toUpperCase() === "JWK",
  );
  const claims = provisioner?.claims ?? {};
  return {
    minSeconds: parseGoDuration(claims.minTLSCertDuration) ?? STEP_CA_DEFAULT_LIMITS.minSeconds,
    maxSeconds: parseGoDuration(claims.maxTLSCertDuration) ?? STEP_CA_DEFAULT_LIMITS.maxSeconds,
  };
}

/** Largest OID arc that step-ca 0.19 (Go 1.19's certificate parser) accepts. */
export const STEP_CA_MAX_OID_ARC = 2 ** 31 - 1;

/** Throws when an OID arc has a component step-ca cannot encode. */
export function checkOidArcForStepCa(arc: string): void {
  const tooLarge = arc.split(".").some((part) => BigInt(part) > BigInt(STEP_CA_MAX_OID_ARC));
  if (tooLarge) {
    throw new Error(
      `CERT_OID_ARC ${arc} has a component above ${STEP_CA_MAX_OID_ARC}, which step-ca cannot put in a certificate; ` +
        "set CERT_OID_ARC to an arc of your own with smaller components, such as a private enterprise number arc",
    );
  }
}
