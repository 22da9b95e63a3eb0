// A CA decorator for tests: counts calls and lets a test fail, delay or hold individual sign calls.
import type {
  CertificateAuthority,
  RevocationReason,
  SignedCertificate,
  SignRequest,
} from "../../src/ca/authority.ts";

/** Runs before each sign call; may throw to fail the call or wait to hold it. */
export type SignHook = (request: SignRequest, call: number) => Promise<void> | void;

export class CountingCa implements CertificateAuthority {
  readonly kind;
  signCalls = 0;
  readonly revoked: { serialNumber: string; reason: RevocationReason }[] = [];
  readonly signed: SignedCertificate[] = [];
  /** Set by a test to inject faults; cleared with `undefined`. */
  beforeSign: SignHook | undefined;

  constructor(private readonly inner: CertificateAuthority) {
    this.kind = inner.kind;
  }

  async sign(request: SignRequest): Promise<SignedCertificate> {
    this.signCalls += 1;
    await this.beforeSign?.(request, this.signCalls);
    const signed = await this.inner.sign(request);
    this.signed.push(signed);
    return signed;
  }

  async revoke(serialNumber: string, reason: RevocationReason): Promise<void> {
    this.revoked.push({ serialNumber, reason });
    await this.inner.revoke(serialNumber, reason);
  }

  roots(): string[] {
    return this.inner.roots();
  }

  checkReady(): Promise<void> {
    return this.inner.checkReady();
  }
}

/** A promise with its resolve function, for holding a call until the test lets it go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
