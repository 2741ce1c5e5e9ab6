import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blockPath, decodeIndex, InputError, UsageError } from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreReader } from '../src/store-reader.js';
import { packImage, tempDir } from './helpers.js';

let work: string;
let cleanup: () => Promise<void>;
let store: string;
let reader: StoreReader;
let firstId: string;

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir());
  store = join(work, 'store');
  await packImage(work, store, 'img', [
    ['t', 256 * 1024],
    ['z', 64 * 1024],
  ]);
  await writeFile(join(store, 'broken.idx'), 'thfc-index 1\nnot really\n');
  await writeFile(join(work, 'secret'), 'SECRET');
  reader = await StoreReader.open({}, { root: join(work, '.', 'store') });
  firstId = (decodeIndex(await readFile(join(store, 'img.idx'))).index.ref(0) as { id: string }).id;
});
afterAll(async () => {
  reader?.close();
  await cleanup();
});

describe('StoreReader', () => {
  it('refuses a store that is not a readable directory', async () => {
    await expect(StoreReader.open({}, { root: join(work, 'missing') })).rejects.toThrow(InputError);
    await expect(StoreReader.open({}, { root: join(work, 'secret') })).rejects.toThrow(UsageError);
  });

  it('opens blocks through the descriptor cache, and lists only indexes that decode', async () => {
    const f = await reader.openBlock(firstId);
    expect(f?.size).toBeGreaterThan(0);
    reader.releaseBlock(f as NonNullable<typeof f>);
    expect(await reader.openBlock('f'.repeat(40))).toBeUndefined();
    const listing = await reader.listIndexes();
    expect(listing.map((l) => l.name)).toEqual(['img']);
    const bytes = await readFile(join(store, 'img.idx'));
    expect(listing[0]?.bytes).toBe(bytes.length);
    expect(listing[0]?.digest).toBe(decodeIndex(bytes).digest);
    expect(await reader.healthy()).toBe(true);
  });

  it('lists what else the store holds for each image: its profile (size, SHA-256) and retained versions', async () => {
    const listed = (await reader.listIndexes())[0];
    // packImage publishes through the version store: the index is its own first version; no profile.
    expect(listed?.profile).toBeNull();
    expect(listed?.versions).toEqual([listed?.digest]);
    const profile = Buffer.from('thfc-profile 1\n');
    await writeFile(join(store, 'img.profile'), profile);
    try {
      const again = (await reader.listIndexes())[0];
      expect(again?.profile).toEqual({
        bytes: profile.length,
        sha256: createHash('sha256').update(profile).digest('hex'),
      });
    } finally {
      await rm(join(store, 'img.profile'));
    }
  });

  it('computes facts once per file identity', async () => {
    const f = await reader.openRootFile('img.idx');
    const facts = await reader.factsOf('img.idx', f as NonNullable<typeof f>);
    expect(facts.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(facts.digest).toMatch(/^sha256:/);
    expect(await reader.factsOf('img.idx', f as NonNullable<typeof f>)).toBe(facts);
    reader.closeFile(f as NonNullable<typeof f>);
    const broken = await reader.openRootFile('broken.idx');
    expect((await reader.factsOf('broken.idx', broken as NonNullable<typeof broken>)).digest).toBeUndefined();
    reader.closeFile(broken as NonNullable<typeof broken>);
  });

  it('never follows a symlink out of the store: not a root file, not a shard, not a block', async () => {
    await symlink(join(work, 'secret'), join(store, 'leak.idx'));
    expect(await reader.openRootFile('leak.idx')).toBeUndefined();

    // A block file replaced by a symlink.
    const id = 'e'.repeat(40);
    await mkdir(join(store, 'blocks', 'ee'), { recursive: true });
    await symlink(join(work, 'secret'), join(store, blockPath(id)));
    expect(await reader.openBlock(id)).toBeUndefined();

    // A whole shard directory pointing outside.
    const outside = join(work, 'outside', 'dd');
    const did = 'd'.repeat(40);
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, did), 'SECRET');
    await symlink(outside, join(store, 'blocks', 'dd'));
    expect(await reader.openBlock(did)).toBeUndefined();

    // `blocks` itself moved aside and replaced by a symlink to a copy: still refused.
    const fresh = await StoreReader.open({}, { root: store });
    await rename(join(store, 'blocks'), join(work, 'real-blocks'));
    await symlink(join(work, 'real-blocks'), join(store, 'blocks'));
    expect(await fresh.openBlock(firstId)).toBeUndefined();
    fresh.close();
  });
});
