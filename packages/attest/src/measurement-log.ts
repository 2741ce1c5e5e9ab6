import { InvalidArgumentError } from '@thfc/format';
import {
  BLOCK_TEMPLATE,
  blockField,
  checkEvent,
  formatLogLine,
  INDEX_TEMPLATE,
  type LogEntry,
  type MeasurementEvent,
  templateDigests,
} from './measurement-event.js';
import { type BankDigests, extendPcr, PCR_BANKS, PCR_COUNT, type PcrBank, zeroPcr } from './pcr-bank.js';

/** Where measurements go besides the log: a TPM (tpm-extender.ts), or a fake in tests. */
export interface PcrExtender {
  /** Extends `pcr` by each digest set, in order; resolves once the PCR holds them all. Never abandoned halfway. */
  extend(pcr: number, digests: readonly BankDigests[]): Promise<void>;
  toString(): string;
}

export interface MeasurementLogOptions {
  /** The PCR every measurement of this log extends. */
  readonly pcr?: number | undefined;
}

/**
 * PCR 23, the PC client spec's "application support" PCR: no firmware or boot
 * loader extends it, so measuring there disturbs nothing that seals secrets to
 * boot PCRs, and it starts at zero every boot. It is also resettable from
 * locality 0, so a root process can rewrite it: choose a PCR your platform
 * leaves unused and cannot reset when the verifier must hold against root
 * (docs/TRUST.md).
 */
export const DEFAULT_MEASUREMENT_PCR = 23;

/**
 * The running measurement log of one daemon: an append-only list whose
 * software PCR values (SHA-1 and SHA-256 banks) are extended as each entry is
 * appended, in the same order the entries are handed to the extender. So the
 * text, the software values and the TPM's PCR always describe one sequence.
 */
export class MeasurementLog {
  readonly pcr: number;
  private readonly entries: LogEntry[] = [];
  private readonly lines: string[] = [];
  private readonly values: Record<PcrBank, Buffer> = { sha1: zeroPcr('sha1'), sha256: zeroPcr('sha256') };
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly components: { extender?: PcrExtender | undefined } = {},
    options: MeasurementLogOptions = {},
  ) {
    this.pcr = options.pcr ?? DEFAULT_MEASUREMENT_PCR;
    if (!Number.isInteger(this.pcr) || this.pcr < 0 || this.pcr >= PCR_COUNT)
      throw new InvalidArgumentError(`PCR ${this.pcr} is not one of 0-${PCR_COUNT - 1}`);
  }

  /**
   * Appends an entry now (synchronously) and resolves once the extender holds
   * it. A failed extend rejects this call and every later settled(): the PCR
   * no longer matches the log, and readers must not be told otherwise.
   */
  measure(event: MeasurementEvent): Promise<void> {
    checkEvent(event);
    const entry: LogEntry = { pcr: this.pcr, event };
    const digests = templateDigests(event);
    for (const bank of PCR_BANKS) this.values[bank] = extendPcr(bank, this.values[bank], digests[bank]);
    this.entries.push(entry);
    this.lines.push(formatLogLine(entry));
    const extender = this.components.extender;
    if (!extender) return this.last;
    const previous = this.last;
    const mine = extender.extend(this.pcr, [digests]);
    // Chained so settled() rejects for good after any failure, not just for the one that failed.
    this.last = previous.then(() => mine);
    // Callers that do not wait (a block observer) must not turn a failure into an unhandled rejection;
    // it still reaches everyone who awaits this call or settled().
    mine.catch(() => {});
    this.last.catch(() => {});
    return this.last;
  }

  /** An index was mounted: its digest, image name and the key its signature was accepted for (`-` if none). */
  measureIndex(index: string, image: string, keyId: string | undefined): Promise<void> {
    return this.measure({ template: INDEX_TEMPLATE, index, image, keyId: keyId ?? '-' });
  }

  /** A reader first used block `blockId` of the index with digest `index`. */
  measureBlock(index: string, blockId: string): Promise<void> {
    return this.measure({ template: BLOCK_TEMPLATE, index, block: blockField(blockId) });
  }

  /** True when there is no extender: every measurement is settled the moment it is made. */
  get immediate(): boolean {
    return !this.components.extender;
  }

  /** Resolves once every measurement so far is in the extender; rejects if any extend failed. */
  settled(): Promise<void> {
    return this.last;
  }

  get length(): number {
    return this.entries.length;
  }

  /** The log in `ascii_runtime_measurements` columns. */
  text(): string {
    return this.lines.join('');
  }

  /** The software PCR values after every entry so far, lowercase hex. */
  pcrValues(): Record<PcrBank, string> {
    return { sha1: this.values.sha1.toString('hex'), sha256: this.values.sha256.toString('hex') };
  }

  toString(): string {
    const tpm = this.components.extender;
    return `measurement-log(pcr ${this.pcr}${tpm ? `, ${tpm}` : ', software only'})`;
  }
}
