import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockNotFoundError, blockPath, MirrorUnavailableError } from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../src/logger.js';
import { CachedSource } from '../src/sources/cached.js';
import { CheckedSource } from '../src/sources/checked.js';
import { DiskCache } from '../src/sources/disk-cache.js';
import { corrupted, makeBlock, type TestBlock, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function setup(paranoid?: boolean) {
  const t = await tempDir('thfc-checked-');
  cleanups.push(t.cleanup);
  const disk = new DiskCache({}, { dir: t.dir });
  const logger = new MemoryLogger();
  const checked = new CheckedSource({ cache: disk, logger }, { paranoid });
  const fileOf = (b: TestBlock) => join(t.dir, blockPath(b.ref.id));
  return { dir: t.dir, disk, logger, checked, fileOf };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('CheckedSource', () => {
  it('serves a good block unchanged', async () => {
    const { disk, checked, logger } = await setup();
    const b = makeBlock(1);
    await disk.put(b.ref, b.stored);
    expect(same(await checked.get(b.ref), b.stored)).toBe(true);
    expect(logger.lines).toEqual([]);
  });

  it('verifies on first use only: bytes changed on disk after that are still served', async () => {
    const { disk, checked, fileOf } = await setup();
    const b = makeBlock(2);
    await disk.put(b.ref, b.stored);
    await checked.get(b.ref);
    const bad = corrupted(b.stored);
    await writeFile(fileOf(b), bad);
    // Not paranoid: the second use trusts the first check (this is what makes a hit cheap).
    expect(same(await checked.get(b.ref), bad)).toBe(true);
    expect(disk.holds(b.ref.id)).toBe(true);
  });

  it('paranoid verifies on every use: bytes changed on disk after the first use are a miss', async () => {
    const { disk, checked, fileOf, logger } = await setup(true);
    const b = makeBlock(3);
    await disk.put(b.ref, b.stored);
    expect(same(await checked.get(b.ref), b.stored)).toBe(true);
    expect(same(await checked.get(b.ref), b.stored)).toBe(true);
    await writeFile(fileOf(b), corrupted(b.stored));
    await expect(checked.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(logger.lines).toHaveLength(1);
  });

  it('a corrupt entry is dropped from the cache, logged, and reported as BlockNotFoundError', async () => {
    const { disk, checked, fileOf, logger } = await setup();
    const b = makeBlock(4);
    await disk.put(b.ref, corrupted(b.stored));
    const e = await checked.get(b.ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockNotFoundError);
    expect((e as BlockNotFoundError).blockId).toBe(b.ref.id);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(disk.holds(b.ref.id)).toBe(false);
    expect(disk.bytes).toBe(0);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(
      /^FAULT block [0-9a-f]{40} from disk\(.*\) is corrupt: .*; dropped from the cache, fetching again$/,
    );
    // Now it is simply absent.
    await expect(checked.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(logger.lines).toHaveLength(1);
  });

  it('a truncated entry (wrong stored size) is dropped too', async () => {
    const { disk, checked, fileOf } = await setup();
    const b = makeBlock(5);
    await disk.put(b.ref, b.stored.subarray(0, b.stored.length - 1));
    await expect(checked.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(b))).toBe(false);
  });

  it('another block’s bytes under this name are dropped', async () => {
    const { disk, checked, fileOf } = await setup();
    const wanted = makeBlock(6);
    const other = makeBlock(7);
    expect(other.stored.length).toBe(wanted.stored.length); // same size: only the hash tells them apart
    await disk.put(wanted.ref, other.stored);
    await expect(checked.get(wanted.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(wanted))).toBe(false);
  });

  it('passes on BlockNotFoundError and MirrorUnavailableError from the cache unchanged', async () => {
    const { dir, checked } = await setup();
    const absent = makeBlock(9);
    await expect(checked.get(absent.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    const unreadable = makeBlock(10);
    await mkdir(join(dir, blockPath(unreadable.ref.id)), { recursive: true });
    await expect(checked.get(unreadable.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
  });

  it('has() is the cache’s has()', async () => {
    const { disk, checked } = await setup();
    const b = makeBlock(11);
    expect(await checked.has(b.ref)).toBe(false);
    await disk.put(b.ref, b.stored);
    expect(await checked.has(b.ref)).toBe(true);
  });

  it('toString says how often it checks', async () => {
    const { dir, checked } = await setup();
    expect(String(checked)).toBe(`checked-once(disk(${dir}))`);
    expect(String((await setup(true)).checked)).toMatch(/^checked-always\(disk\(.*\)\)$/);
  });

  it('under cached(), a corrupt cache entry heals: it is fetched again and replaced', async () => {
    const { disk, checked, fileOf, logger } = await setup();
    const b = makeBlock(12);
    await disk.put(b.ref, corrupted(b.stored));
    const remote = new FakeSource('remote');
    remote.blocks.set(b.ref.id, b.stored);
    const counters = { hits: 0, fetched: 0, bytesFetched: 0 };
    const cached = new CachedSource({
      cache: {
        get: checked.get.bind(checked),
        has: checked.has.bind(checked),
        put: disk.put.bind(disk),
        toString: () => String(checked),
      },
      remote,
      counters,
    });
    expect(same(await cached.get(b.ref), b.stored)).toBe(true);
    expect(remote.calls).toEqual([b.ref.id]);
    expect(logger.lines).toHaveLength(1);
    // The good copy replaced the bad one on disk, and the next read is a hit.
    expect(same(await readFile(fileOf(b)), b.stored)).toBe(true);
    expect(same(await cached.get(b.ref), b.stored)).toBe(true);
    expect(remote.calls).toHaveLength(1);
    expect(counters).toMatchObject({ hits: 1, fetched: 1 });
  });
});
