import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MeasurementLog } from '@thfc/attest';
import { blockPath } from '@thfc/format';
import { SILENT_LOGGER } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { buildImages } from '../src/build-images.js';
import { loadIndex } from '../src/index-loader.js';
import { makeImage, patternBytes, type TestImage, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A store directory holding the image's blocks and its index, NAME.idx. */
async function publish(dir: string, image: TestImage, name: string): Promise<string> {
  for (const [id, stored] of image.source.blocks) {
    await mkdir(dirname(join(dir, blockPath(id))), { recursive: true });
    await writeFile(join(dir, blockPath(id)), stored);
  }
  await writeFile(join(dir, `${name}.idx`), image.indexBytes);
  return join(dir, `${name}.idx`);
}

describe('buildImages', () => {
  it('builds each image over one disk cache: reads are right, fetched blocks counted, measured and recorded', async () => {
    const { dir, cleanup } = await tempDir('thfc-build-images-');
    cleanups.push(cleanup);
    const zero = new Uint8Array(4096);
    const a = makeImage([patternBytes(4096, 1), zero, patternBytes(4096, 2)], { name: 'a' });
    const b = makeImage([patternBytes(4096, 3), patternBytes(1000, 4)], { name: 'b' });
    await mkdir(join(dir, 'store'));
    const loaded = [
      await loadIndex(await publish(join(dir, 'store'), a, 'a'), {}),
      await loadIndex(await publish(join(dir, 'store'), b, 'b'), {}),
    ];
    const measurements = new MeasurementLog();
    const watched: string[] = [];
    const set = await buildImages(
      loaded,
      { indexes: ['a', 'b'], measureBlocks: true, recordProfile: join(dir, 'a.profile') },
      {
        logger: SILENT_LOGGER,
        dispatcher: undefined,
        cacheDir: join(dir, 'cache'),
        mirrorBases: undefined,
        measurements,
        watch: (l) => {
          watched.push(l.decoded.index.header.name);
          return undefined;
        },
      },
    );
    // The set holds the indexes without their files' bytes: the loaded list is let go.
    expect(loaded).toEqual([]);
    expect(watched).toEqual(['a', 'b']);
    expect(set.images.map((s) => s.index.header.name)).toEqual(['a', 'b']);
    for (const [s, image] of [
      [set.images[0], a],
      [set.images[1], b],
    ] as const) {
      const buf = Buffer.alloc(image.bytes.length);
      expect(await s?.reader.read(buf, buf.length, 0)).toBe(image.bytes.length);
      expect(buf.equals(image.bytes)).toBe(true);
    }
    const status = set.status();
    expect(status.pid).toBe(process.pid);
    expect(status.cache.dir).toBe(join(dir, 'cache'));
    expect(status.images.map((i) => [i.name, i.blocks, i.zeroBlocks, i.uniqueBlocks, i.blocksFetched])).toEqual([
      ['a', 3, 1, 2, 2],
      ['b', 2, 0, 2, 2],
    ]);
    // Each image's blocks, measured on first use: one line for each of the 4 non-zero blocks.
    expect(measurements.text().trim().split('\n')).toHaveLength(4);
    await set.close();
    // close() saved the boot profile of what the readers touched (the commands allow it for one image only).
    expect(existsSync(join(dir, 'a.profile'))).toBe(true);
  });
});
