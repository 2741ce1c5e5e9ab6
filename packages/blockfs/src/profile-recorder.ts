import type { BlockRef, ImageIndex } from '@thfc/format';
import { encodeProfile } from '@thfc/format';
import { writeFileAtomic } from '@thfc/store';

/**
 * Records the blocks readers touch, in first-touch order, as a boot profile
 * (format in @thfc/format boot-profile.ts). Attach `observe` to the image
 * reader; `save` writes the unsigned profile, which `thfc-pack profile add`
 * checks, signs and publishes beside the index.
 */
export class ProfileRecorder {
  private readonly order: string[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly index: ImageIndex,
    private readonly indexDigest: string,
  ) {}

  readonly observe = (_i: number, ref: BlockRef): void => {
    if (this.seen.has(ref.id)) return;
    this.seen.add(ref.id);
    this.order.push(ref.id);
  };

  get blocks(): number {
    return this.order.length;
  }

  encode(): Uint8Array {
    return encodeProfile(this.index.header.name, this.indexDigest, this.order);
  }

  async save(path: string): Promise<void> {
    await writeFileAtomic(path, this.encode(), { durable: true });
  }
}
