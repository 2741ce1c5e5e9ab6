import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSource,
  decodeVerified,
  type SourceOptions,
} from '@thfc/format';
import { type Logger, SILENT_LOGGER } from '../logger.js';

export interface CheckedOptions {
  /** Verify on every use, not only the first use after start. */
  readonly paranoid?: boolean | undefined;
}

/**
 * Verifies blocks from a local cache on their first use after start (or on
 * every use when paranoid). A corrupt entry is dropped and reported as a miss
 * (BlockNotFoundError), so `cached` fetches it again: the cache heals itself.
 * Passes on BlockNotFoundError and MirrorUnavailableError; absorbs
 * BlockCorruptError.
 */
export class CheckedSource implements BlockSource {
  private readonly verifiedIds = new Set<string>();

  constructor(
    private readonly components: { cache: BlockSource & { delete(id: string): Promise<void> }; logger?: Logger },
    private readonly options: CheckedOptions = {},
  ) {}

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    const stored = await this.components.cache.get(ref, options);
    if (!this.options.paranoid && this.verifiedIds.has(ref.id)) return stored;
    try {
      decodeVerified(ref, stored, this.components.cache.toString());
    } catch (e) {
      if (!(e instanceof BlockCorruptError)) throw e;
      (this.components.logger ?? SILENT_LOGGER).fault(`${e.message}; dropped from the cache, fetching again`);
      this.verifiedIds.delete(ref.id);
      await this.components.cache.delete(ref.id);
      throw new BlockNotFoundError(ref.id, this.toString());
    }
    this.verifiedIds.add(ref.id);
    return stored;
  }

  has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    return this.components.cache.has(ref, options);
  }

  toString(): string {
    return `checked${this.options.paranoid ? '-always' : '-once'}(${this.components.cache})`;
  }
}
