import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDiff } from '../src/diff.js';
import { runGc } from '../src/gc.js';
import { runPack } from '../src/pack.js';
import { imageBytes, tempDir, testIo } from './helpers.js';

const K = 1024;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

async function twoVersions() {
  const v1 = imageBytes(
    [
      ['t', 64 * K],
      ['t', 64 * K],
      ['z', 64 * K],
      ['t', 64 * K],
    ],
    5,
  );
  const v2 = Buffer.from(v1);
  v2.write('changed!', 64 * K + 100); // block 1 changes
  v2.write('also', 3 * 64 * K + 1); // block 3 changes
  await writeFile(join(dir, 'v1.img'), v1);
  await writeFile(join(dir, 'v2.img'), v2);
  const store = join(dir, 's');
  const a = await runPack({ image: join(dir, 'v1.img'), store, blockSize: 64 * K }, testIo());
  const b = await runPack({ image: join(dir, 'v2.img'), store, blockSize: 64 * K }, testIo());
  return { store, a, b };
}

describe('diff', () => {
  it('lists exactly the blocks and bytes a holder of OLD must fetch for NEW', async () => {
    const { a, b } = await twoVersions();
    const r = await runDiff({ old: a.index, new: b.index });
    expect(r.fetch).toHaveLength(2);
    expect(r.reusedBlocks).toBe(1);
    expect(r.fetchBytes).toBe(b.newBytes);
    expect((await runDiff({ old: a.index, new: a.index })).fetch).toEqual([]);
  });
});

describe('gc', () => {
  it('lists unreferenced blocks as a dry run and deletes them only with --delete', async () => {
    const { store, a } = await twoVersions();
    const { rm } = await import('node:fs/promises');
    await rm(a.index);
    const old = Date.now() / 1000 - 7200;
    const files = async () =>
      (await Promise.all((await readdir(join(store, 'blocks'))).map((s) => readdir(join(store, 'blocks', s))))).flat();
    for (const s of await readdir(join(store, 'blocks'))) {
      for (const f of await readdir(join(store, 'blocks', s))) await utimes(join(store, 'blocks', s, f), old, old);
    }
    const before = await files();
    // keep 0 / keepDays 0: the retained copy of the removed index does not hold its blocks (see the retention tests).
    const noVersions = { keep: 0, keepDays: 0 };
    const dry = await runGc({ store, ...noVersions });
    expect(dry.unreferenced).toHaveLength(2);
    expect(await files()).toEqual(before);
    const del = await runGc({ store, delete: true, ...noVersions });
    expect(del.deleted).toBe(true);
    expect((await files()).length).toBe(before.length - 2);
    expect((await runGc({ store, ...noVersions })).unreferenced).toEqual([]);
  });

  it('leaves young files alone (a pack may be about to publish them)', async () => {
    const { store, a } = await twoVersions();
    const { rm } = await import('node:fs/promises');
    await rm(a.index);
    const r = await runGc({ store, delete: true, keep: 0, keepDays: 0 });
    expect(r.unreferenced).toEqual([]);
    expect(r.tooYoung).toBe(2);
  });

  it('refuses to run when an index is unreadable', async () => {
    const { store, a } = await twoVersions();
    const text = await readFile(a.index, 'utf8');
    await writeFile(a.index, text.slice(0, text.length - 30));
    await expect(runGc({ store, delete: true, graceSeconds: 0 })).rejects.toThrow(/nothing deleted/);
  });

  it('cleans temp files left by a killed run', async () => {
    const { store } = await twoVersions();
    const shard = (await readdir(join(store, 'blocks')))[0] as string;
    const tmp = join(store, 'blocks', shard, '.tmp-abc.123.deadbeef');
    await writeFile(tmp, 'partial');
    const r = await runGc({ store, graceSeconds: 0 });
    expect(r.unreferenced.map((f) => f.path)).toEqual([tmp]);
  });
});
