import type { Histogram } from "prom-client";
import {
  CaError,
  type CertificateAuthority,
  type RevocationReason,
  type SignedCertificate,
  type SignRequest,
} from "../ca/authority.ts";

/**
 * A CA that times each sign call into `histogram`, labelled with the CA kind and the result:
 * "success", or the CaError kind of the failure ("internal" for any other error).
 */
export class MeasuredCa implements CertificateAuthority {
  constructor(
    private readonly inner: CertificateAuthority,
    private readonly histogram: Histogram<"ca" | "result">,
  ) {}

  get kind(): CertificateAuthority["kind"] {
    return this.inner.kind;
  }

  async sign(request: SignRequest): Promise<SignedCertificate> {
    const stopTimer = this.histogram.startTimer({ ca: this.inner.kind });
    try {
      const signed = await this.inner.sign(request);
      stopTimer({ result: "success" });
      return signed;
    } catch (error) {
      stopTimer({ result: error instanceof CaError ? error.kind : "internal" });
      throw error;
    }
  }

  revoke(serialNumber: string, reason: RevocationReason): Promise<void> {
    return this.inner.revoke(serialNumber, reason);
  }

  roots(): string[] {
    return this.inner.roots();
  }

  checkReady(): Promise<void> {
    return this.inner.checkReady();
  }
}
