import { MirrorUnavailableError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { OfflineSource } from '../src/sources/offline-source.js';
import { makeBlock } from './image-fixtures.js';

describe('OfflineSource', () => {
  it('never has a block: a get could not be answered (EIO), naming the block and --offline', async () => {
    const offline = new OfflineSource();
    const b = makeBlock(1);
    const e = await offline.get(b.ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toBe(
      `offline unavailable: block ${b.ref.id} is not cached and cannot be fetched offline (--offline)`,
    );
    expect(await offline.has()).toBe(false);
    expect(String(offline)).toBe('offline');
  });
});
