import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '@thfc/format';
import { MemoryLogger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { StaticServer } from '../../../test/support/static-server.js';
import { loadImages } from '../src/mount.js';
import { makeImage, patternBytes, tempDir } from './image-fixtures.js';
import { publishImage } from './image-set.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Two images published to DIR/store, served over HTTP on 127.0.0.1, and an empty mount point. */
async function published() {
  const { dir, cleanup } = await tempDir('thfc-load-images-');
  cleanups.push(cleanup);
  const store = join(dir, 'store');
  await mkdir(store);
  await mkdir(join(dir, 'mnt'));
  const a = makeImage([patternBytes(4096, 1), patternBytes(4096, 2)], { name: 'a' });
  const b = makeImage([patternBytes(4096, 3)], { name: 'b' });
  await publishImage(store, a, 'a');
  await publishImage(store, b, 'b');
  const server = await new StaticServer(store).start();
  cleanups.push(() => server.kill());
  return { dir, server, mountpoint: join(dir, 'mnt') };
}

describe('loadImages (the first step of a mount)', () => {
  it('loads every index over HTTP in order, measures each, and reloads them quietly', async () => {
    const { dir, server, mountpoint } = await published();
    const logger = new MemoryLogger();
    const indexes = [`${server.url}a.idx`, `${server.url}b.idx`];
    const images = await loadImages(
      { mountpoint: `${mountpoint}/.`, indexes, cacheDir: join(dir, 'cache') },
      { logger, env: {} },
    );
    expect(images.mountpoint).toBe(mountpoint);
    expect(images.clearedStale).toBe(false);
    expect(images.cacheDir).toBe(join(dir, 'cache'));
    expect(images.pool).toBeUndefined();
    expect(images.loaded.map((l) => l.decoded.index.header.name)).toEqual(['a', 'b']);
    expect(images.loaded.map((l) => l.location.location)).toEqual(indexes);
    // One measurement per index, in order, before any block could be read.
    const measured = images.measurements.text().trim().split('\n');
    expect(measured).toHaveLength(2);
    expect(measured[0]).toContain(images.loaded[0]?.decoded.digest.replace(/^sha256:/, ''));
    const lines = logger.lines.length;
    const again = await images.reload();
    expect(again.map((l) => l.decoded.digest)).toEqual(images.loaded.map((l) => l.decoded.digest));
    expect(logger.lines).toHaveLength(lines); // a version check logs nothing
  });

  it('--record-profile with two images is a usage error', async () => {
    const { server, mountpoint } = await published();
    const options = {
      mountpoint,
      indexes: [`${server.url}a.idx`, `${server.url}b.idx`],
      nocache: true,
      recordProfile: join(mountpoint, '..', 'x.profile'),
    };
    await expect(loadImages(options, { logger: new MemoryLogger(), env: {} })).rejects.toBeInstanceOf(UsageError);
  });

  it('an index that cannot be loaded fails the whole mount (all or nothing)', async () => {
    const { server, mountpoint } = await published();
    const options = { mountpoint, indexes: [`${server.url}a.idx`, `${server.url}missing.idx`], nocache: true };
    await expect(loadImages(options, { logger: new MemoryLogger(), env: {} })).rejects.toThrow(/missing\.idx/);
  });
});
