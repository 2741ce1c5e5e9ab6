import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryLogger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { runBackground, startBackground } from '../src/image-background.js';
import { makeImage, patternBytes, type TestImage, tempDir } from './image-fixtures.js';
import { buildImageSet } from './image-set.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-image-background-');
  cleanups.push(t.cleanup);
  return t.dir;
}

/** Four distinct blocks and a zero block: 4 unique blocks to fetch. */
const image = (name = 'a', seed = 10) =>
  makeImage([0, 1, 2, 3].map((i) => patternBytes(4096, seed + i)).concat([new Uint8Array(4096)]), { name });

/** A boot profile of blocks `touched` of the image, as a mount's --record-profile writes it. */
async function recordProfile(img: TestImage, touched: readonly number[]): Promise<string> {
  const work = await dir();
  const path = join(work, 'a.profile');
  const set = await buildImageSet(work, [{ image: img, name: 'a' }], { recordProfile: path });
  const buf = Buffer.alloc(4096);
  for (const i of touched) await set.images[0]?.reader.read(buf, 4096, i * 4096);
  await set.close();
  return path;
}

async function mounted(img: TestImage, options: Parameters<typeof buildImageSet>[2] = {}) {
  const logger = new MemoryLogger();
  const set = await buildImageSet(await dir(), [{ image: img, name: 'a' }], options, { logger });
  cleanups.push(() => set.abandon());
  const s = set.images[0];
  if (!s) throw new Error('no image');
  return { set, s, logger };
}

describe('runBackground', () => {
  it('--fill fetches every block of the image and caches it, then says so', async () => {
    const img = image();
    const { set, s, logger } = await mounted(img, { fill: true, noPrefetch: true });
    await runBackground(
      s,
      { dispatcher: undefined, logger },
      { indexes: ['a'], fill: true, noPrefetch: true },
      new AbortController().signal,
    );
    expect(s.late.prefetcher).toBeUndefined();
    expect(s.late.filler?.status()).toMatchObject({ blocks: 4, fetched: 4, failed: 0, done: true });
    expect(s.blocks.stats().blocksFetched).toBe(4);
    await set.close(); // the writes behind land
    expect(s.missing.size).toBe(0);
    expect(logger.lines).toContain('INFO fill of a done: the image is cached');
  });

  it('replays a boot profile first, then fills only the blocks the profile did not name', async () => {
    const img = image();
    const profile = await recordProfile(img, [0, 2]);
    // --nocache: the profile's blocks stay "missing", so only the filter keeps the fill off them.
    const { s, logger } = await mounted(img, { nocache: true });
    const options = { indexes: ['a'], prefetch: profile, fill: true };
    await runBackground(s, { dispatcher: undefined, logger }, options, new AbortController().signal);
    expect(s.late.prefetchSource).toBe(profile);
    expect(s.late.prefetcher?.status()).toMatchObject({ blocks: 2, fetched: 2, done: true });
    expect(s.late.filler?.status()).toMatchObject({ blocks: 2, fetched: 2, done: true });
    expect(s.blocks.stats().blocksFetched).toBe(4);
    expect(logger.lines).toContain('INFO image a: replaying a boot profile of 2 blocks');
  });

  it('a profile of another index is ignored with a log line, and the fill still runs', async () => {
    const profile = await recordProfile(image('a', 50), [0, 1]);
    const { s, logger } = await mounted(image());
    const options = { indexes: ['a'], prefetch: profile, fill: true };
    await runBackground(s, { dispatcher: undefined, logger }, options, new AbortController().signal);
    expect(s.late.prefetcher).toBeUndefined();
    expect(logger.lines.filter((l) => l.startsWith('FAULT image a: boot profile ignored: '))).toHaveLength(1);
    expect(s.late.filler?.status()).toMatchObject({ blocks: 4, fetched: 4 });
  });

  it('an aborted mount starts no fill; --offline without --prefetch looks for no profile', async () => {
    const img = image();
    const { s, logger } = await mounted(img);
    const ac = new AbortController();
    ac.abort();
    await runBackground(s, { dispatcher: undefined, logger }, { indexes: ['a'], fill: true }, ac.signal);
    expect(s.late.prefetcher).toBeUndefined();
    expect(s.late.filler).toBeUndefined();
    expect(s.blocks.stats().blocksFetched).toBe(0);
    // A profile where the mount would look for one (beside the index): --offline leaves it, a mount replays it.
    await copyFile(await recordProfile(img, [1]), join(s.loaded.location.base, 'a.profile'));
    const none = new AbortController().signal;
    await runBackground(s, { dispatcher: undefined, logger }, { indexes: ['a'], offline: true }, none);
    expect(s.late.prefetcher).toBeUndefined();
    await runBackground(s, { dispatcher: undefined, logger }, { indexes: ['a'] }, none);
    expect(s.late.prefetcher?.status()).toMatchObject({ blocks: 1, fetched: 1 });
    expect(s.late.prefetchSource).toBe('a.profile');
  });
});

describe('startBackground', () => {
  it('runs each image’s background work until the signal aborts', async () => {
    const img = image();
    const { set, s, logger } = await mounted(img);
    const ac = new AbortController();
    startBackground(
      set,
      undefined,
      { dispatcher: undefined, logger, env: {} },
      { indexes: ['a'], fill: true },
      ac.signal,
    );
    for (let i = 0; i < 200 && !s.late.filler?.status().done; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.late.filler?.status()).toMatchObject({ fetched: 4, done: true });
    ac.abort();
  });
});
