import { TpmError } from './errors.js';
import type { PcrExtender } from './measurement-log.js';
import { type BankDigests, PCR_BANKS, PCR_COUNT, type PcrBank } from './pcr-bank.js';
import type { Tpm2Tools } from './tpm.js';

/** The part of a TPM the extender uses: Tpm2Tools, or a fake in tests. */
export type PcrDevice = Pick<Tpm2Tools, 'activeBanks' | 'pcrRead' | 'pcrExtend' | 'toString'>;

export interface TpmExtenderOptions {
  /**
   * Digest sets per tool run. Measurements that arrive while one run is in
   * flight wait and go together in the next, so a burst of first reads costs
   * a few runs, not one each; 64 keeps a command line well under 16 KB.
   */
  readonly maxBatch?: number | undefined;
}

export const DEFAULT_MAX_BATCH = 64;

/**
 * Feeds a measurement log's digests into a real PCR, in log order: one
 * extend run at a time, batching whatever queued meanwhile. open() checks
 * first that the TPM answers, which of the SHA-1 and SHA-256 banks it has,
 * and that the PCR is still at zero: a log replays from zero, so a PCR that
 * already holds other measurements could never match it.
 *
 * After a failed run the PCR may hold part of a batch, so it no longer
 * matches the log: every later extend fails at once (fail closed), and
 * readers waiting on a measurement get EIO rather than unmeasured data.
 */
export class TpmExtender implements PcrExtender {
  private banks: PcrBank[] = [];
  private queue: { digests: BankDigests; done: (e?: unknown) => void }[] = [];
  private running = false;
  private broken: Error | undefined;

  constructor(
    private readonly components: { tpm: PcrDevice },
    private readonly options: TpmExtenderOptions = {},
  ) {}

  /** The banks extended (those of sha1 and sha256 the TPM has), once open. */
  get activeBanks(): readonly PcrBank[] {
    return this.banks;
  }

  async open(pcr: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isInteger(pcr) || pcr < 0 || pcr >= PCR_COUNT) throw new TpmError(`PCR ${pcr} is not one of 0-23`);
    const tpm = this.components.tpm;
    let have: string[];
    try {
      have = await tpm.activeBanks(signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new TpmError(
        `no TPM reachable through ${tpm} (${(e as Error).message}); run without --tpm: the software measurement log still works`,
      );
    }
    this.banks = PCR_BANKS.filter((b) => have.includes(b));
    if (this.banks.length === 0)
      throw new TpmError(`the TPM has neither a sha1 nor a sha256 PCR bank (it has ${have.join(', ') || 'none'})`);
    const values = await tpm.pcrRead(pcr, this.banks, signal);
    for (const bank of this.banks) {
      const v = values[bank]?.[pcr];
      if (v === undefined) throw new TpmError(`the TPM did not report PCR ${pcr} in its ${bank} bank`);
      if (!/^0+$/.test(v)) {
        throw new TpmError(
          `PCR ${pcr} is not zero (${bank} ${v.slice(0, 16)}…): it already holds measurements, from another measuring ` +
            `daemon or an earlier run, and a log must start where the PCR starts. Use another PCR (--tpm-pcr), or reset ` +
            `this one if it is resettable (tpm2_pcrreset ${pcr}, PCRs 16 and 23)`,
        );
      }
    }
  }

  /**
   * Queues the digests; resolves once the PCR holds them. No signal: an extend
   * once logged always runs (each run is bounded by the tool timeout), because
   * stopping halfway would leave the PCR out of step with the log.
   */
  extend(pcr: number, digests: readonly BankDigests[]): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.banks.length === 0) return Promise.reject(new TpmError('TPM extender used before open()'));
    const all = digests.map(
      (d) =>
        new Promise<void>((resolve, reject) => {
          this.queue.push({ digests: d, done: (e) => (e === undefined ? resolve() : reject(e)) });
        }),
    );
    void this.pump(pcr);
    return Promise.all(all).then(() => {});
  }

  private async pump(pcr: number): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? DEFAULT_MAX_BATCH);
        if (this.broken) {
          for (const b of batch) b.done(this.broken);
          continue;
        }
        try {
          await this.components.tpm.pcrExtend(
            pcr,
            batch.map((b) => Object.fromEntries(this.banks.map((bank) => [bank, b.digests[bank]]))),
          );
          for (const b of batch) b.done();
        } catch (e) {
          this.broken = new TpmError(
            `TPM extend of PCR ${pcr} failed (${(e as Error).message}); the PCR no longer matches the log`,
          );
          for (const b of batch) b.done(this.broken);
        }
      }
    } finally {
      this.running = false;
    }
  }

  toString(): string {
    return `tpm(${this.components.tpm}, ${this.banks.join('+') || 'not open'})`;
  }
}
