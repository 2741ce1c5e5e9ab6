import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeIndex } from '@thfc/format';
import { DirStore } from '@thfc/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPack } from '../src/pack.js';
import { formatVerifyReport, runVerify } from '../src/verify.js';
import { tempDir, testIo, writeImage } from './helpers.js';

const K = 1024;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

async function packed() {
  const img = join(dir, 'disk.img');
  await writeImage(
    img,
    [
      ['t', 64 * K],
      ['t', 64 * K],
      ['z', 64 * K],
      ['t', 64 * K],
    ],
    9,
  );
  const store = join(dir, 's');
  const s = await runPack({ image: img, store, blockSize: 64 * K }, testIo());
  const refs = [
    ...decodeIndex(await readFile(s.index))
      .index.uniqueRefs()
      .values(),
  ];
  return { store, index: s.index, refs, ds: new DirStore(store) };
}

describe('runVerify', () => {
  it('passes a good store, with every *.idx by default', async () => {
    const { store, refs } = await packed();
    const r = await runVerify({ store }, testIo());
    expect(r.ok).toBe(true);
    expect(r.blocksChecked).toBe(refs.length);
    expect(r.problems).toEqual([]);
  });

  it('lists missing and corrupt blocks with the images that need them', async () => {
    const { store, refs, ds } = await packed();
    const [a, b] = refs as [(typeof refs)[0], (typeof refs)[0]];
    await rm(ds.pathOf(a.id));
    const p = ds.pathOf(b.id);
    const bytes = await readFile(p);
    bytes.writeUInt8(bytes.readUInt8(10) ^ 1, 10);
    await writeFile(p, bytes);
    const r = await runVerify({ store, indexes: ['disk.idx'] }, testIo());
    expect(r.ok).toBe(false);
    expect(r.problems.map((x) => [x.id, x.problem]).sort()).toEqual(
      [
        [a.id, 'missing'],
        [b.id, 'corrupt'],
      ].sort(),
    );
    expect(r.problems[0]?.images).toEqual(['disk']);
  });

  it('reports an unreadable index without stopping', async () => {
    const { store } = await packed();
    await writeFile(join(store, 'broken.idx'), 'thfc-index 1\nname x\n');
    const r = await runVerify({ store }, testIo());
    expect(r.ok).toBe(false);
    expect(r.indexes.find((i) => i.path.endsWith('broken.idx'))?.error).toMatch(/truncated/);
  });

  it('an unreadable index is counted and named in the summary, not only its blocks', async () => {
    const { store } = await packed();
    await rm(join(store, 'disk.idx'));
    const broken = join(store, 'broken.idx');
    await writeFile(broken, 'thfc-index 1\nname x\n');
    const text = formatVerifyReport(await runVerify({ store }, testIo()));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^index ${broken}: UNREADABLE: .*truncated`));
    expect(lines.at(-1)).toBe(
      `FAILED: 1 indexes (1 unreadable: ${broken}), 0 blocks (0 B) checked, 0 missing, 0 corrupt or unreadable`,
    );
  });

  it('refuses an index where the store belongs', async () => {
    const { index } = await packed();
    await expect(runVerify({ store: index }, testIo())).rejects.toThrow(/is an index file, not a store directory/);
  });
});
