import type { MeasurementLog } from '@thfc/attest/measurement-log';
import type { BlockRef } from '@thfc/format';

/**
 * `--measure-blocks`: logs each block of one image the first time a reader
 * asks for it, never again however often it is read (the log records what
 * was used, not how much). Attach `observe` to the image reader; the read is
 * answered only after `settled()` of the log, so with --tpm a block's
 * measurement is in the PCR before its bytes reach the reader (measure before
 * use, as IMA does).
 */
export class BlockMeasurer {
  private readonly seen = new Set<string>();

  constructor(
    private readonly components: { log: MeasurementLog },
    private readonly indexDigest: string,
  ) {}

  readonly observe = (_i: number, ref: BlockRef): void => {
    if (this.seen.has(ref.id)) return;
    this.seen.add(ref.id);
    void this.components.log.measureBlock(this.indexDigest, ref.id);
  };

  /** Distinct blocks measured so far. */
  get measured(): number {
    return this.seen.size;
  }
}
