import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MeasurementLog } from '@thfc/attest';
import { UsageError } from '@thfc/format';
import { loadIndex, SILENT_LOGGER } from '@thfc/store';
import { ProxyAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { buildImages, imageStatus, measureIndexes, normaliseBase, openMirrors } from '../src/build-images.js';
import { DAEMONS_DIR } from '../src/cache/cache-sealer.js';
import { DEFAULT_CACHE_DIR } from '../src/cache-dir.js';
import { makeImage, patternBytes, tempDir } from './image-fixtures.js';
import { buildImageSet, publishImage } from './image-set.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('buildImages', () => {
  it('builds each image over one disk cache: reads are right, fetched blocks counted, measured and recorded', async () => {
    const { dir, cleanup } = await tempDir('thfc-build-images-');
    cleanups.push(cleanup);
    const zero = new Uint8Array(4096);
    const a = makeImage([patternBytes(4096, 1), zero, patternBytes(4096, 2)], { name: 'a' });
    const b = makeImage([patternBytes(4096, 3), patternBytes(1000, 4)], { name: 'b' });
    await mkdir(join(dir, 'store'));
    const loaded = [
      await loadIndex(await publishImage(join(dir, 'store'), a, 'a'), {}),
      await loadIndex(await publishImage(join(dir, 'store'), b, 'b'), {}),
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

describe('buildImages --nocache', () => {
  it('an image that cannot be built closes what was opened: the daemon leaves the cache registry', async () => {
    const { dir, cleanup } = await tempDir('thfc-build-images-');
    cleanups.push(cleanup);
    const a = makeImage([patternBytes(4096, 1)], { name: 'a' });
    await mkdir(join(dir, 'store'));
    const loaded = [await loadIndex(await publishImage(join(dir, 'store'), a, 'a'), {})];
    const cacheDir = join(dir, 'cache');
    const failed = buildImages(
      loaded,
      { indexes: ['a'] },
      {
        logger: SILENT_LOGGER,
        dispatcher: undefined,
        cacheDir,
        mirrorBases: undefined,
        measurements: new MeasurementLog(),
        watch: () => {
          throw new UsageError('bad version check');
        },
      },
    );
    await expect(failed).rejects.toThrow('bad version check');
    expect(await readdir(join(cacheDir, DAEMONS_DIR))).toEqual([]);
  });

  it('builds with no disk cache: reads are right, nothing is cached and the status says so', async () => {
    const { dir, cleanup } = await tempDir('thfc-build-images-');
    cleanups.push(cleanup);
    const a = makeImage([patternBytes(4096, 5), patternBytes(4096, 6)], { name: 'a' });
    const set = await buildImageSet(dir, [{ image: a, name: 'a' }], { nocache: true });
    const s = set.images[0];
    const buf = Buffer.alloc(a.bytes.length);
    expect(await s?.reader.read(buf, buf.length, 0)).toBe(a.bytes.length);
    expect(buf.equals(a.bytes)).toBe(true);
    expect(String(s?.blocks)).toMatch(/^memory\(32M, cached\(none, failover\(verified\(dir\(/);
    expect(set.status().cache).toMatchObject({ dir: null, blocks: 0, bytes: 0 });
    expect(s && imageStatus(s)).toMatchObject({ name: 'a', blocksFetched: 2, localBlocks: 0, prefetch: null });
    await set.abandon();
    expect(existsSync(join(dir, 'cache'))).toBe(false);
  });
});

describe('openMirrors', () => {
  const env = {};
  it('refuses options that contradict each other, before any DNS', async () => {
    const logger = SILENT_LOGGER;
    await expect(openMirrors({ indexes: [] }, { logger, env })).rejects.toThrow(/no INDEX-URL/);
    await expect(openMirrors({ indexes: ['a'], pool: 'p.example', mirrors: ['/m'] }, { logger, env })).rejects.toThrow(
      UsageError,
    );
    await expect(openMirrors({ indexes: ['a'], pool: 'p.example', offline: true }, { logger, env })).rejects.toThrow(
      /--offline never asks DNS/,
    );
  });

  it('normalises the mirrors, takes the proxy from the environment and names the cache directory', async () => {
    const logger = SILENT_LOGGER;
    const plain = await openMirrors({ indexes: ['a'], mirrors: ['http://m.example/imgs', 'store'] }, { logger, env });
    expect(plain).toMatchObject({ pool: undefined, dispatcher: undefined, cacheDir: DEFAULT_CACHE_DIR });
    expect(plain.mirrorBases).toEqual(['http://m.example/imgs/', resolve('store')]);
    const proxied = await openMirrors(
      { indexes: ['a'], nocache: true },
      { logger, env: { http_proxy: 'http://127.0.0.1:3128' } },
    );
    expect(proxied.dispatcher).toBeInstanceOf(ProxyAgent);
    expect(proxied.cacheDir).toBeUndefined();
    expect(proxied.mirrorBases).toBeUndefined();
    await proxied.dispatcher?.close();
    const own = await openMirrors({ indexes: ['a'], cacheDir: '/var/tmp/mine' }, { logger, env });
    expect(own.cacheDir).toBe('/var/tmp/mine');
  });
});

describe('normaliseBase', () => {
  it('ends URLs with a slash, turns file URLs into paths, resolves directories and refuses other schemes', () => {
    expect(normaliseBase('https://m.example/a')).toBe('https://m.example/a/');
    expect(normaliseBase('HTTP://m.example/a/')).toBe('HTTP://m.example/a/');
    expect(normaliseBase('file:///srv/store')).toBe('/srv/store');
    expect(normaliseBase('rel/store')).toBe(resolve('rel/store'));
    expect(() => normaliseBase('ftp://m.example/a')).toThrow(UsageError);
  });
});

describe('measureIndexes', () => {
  it('puts one line per index in the log, in order, before any block', async () => {
    const { dir, cleanup } = await tempDir('thfc-build-images-');
    cleanups.push(cleanup);
    const a = makeImage([patternBytes(4096, 7)], { name: 'a' });
    const b = makeImage([patternBytes(4096, 8)], { name: 'b' });
    const loaded = [
      await loadIndex(await publishImage(dir, a, 'a'), {}),
      await loadIndex(await publishImage(dir, b, 'b'), {}),
    ];
    const measurements = new MeasurementLog();
    await measureIndexes(loaded, measurements);
    const lines = measurements.text().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(a.decoded.digest);
    expect(lines[1]).toContain(b.decoded.digest);
  });
});
