import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeIndexBody } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runKeygen } from '../src/keygen.js';
import { runPack } from '../src/pack.js';
import { runSign } from '../src/sign.js';
import { tempDir, testIo, writeImage } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

const unzstd = async (path: string) => decodeIndexBody([await readFile(path)], 'zstd', 1e8, path);

describe('NAME.idx.zst', () => {
  it('pack writes it beside NAME.idx, and sign keeps it equal to the signed index', async () => {
    const img = join(dir, 'i.img');
    await writeImage(img, [
      ['t', 700 * 1024],
      ['z', 300 * 1024],
    ]);
    const s = await runPack({ image: img, store: join(dir, 's') }, testIo());
    expect(await unzstd(`${s.index}.zst`)).toEqual(await readFile(s.index));
    await runKeygen({ keyFile: join(dir, 'k') });
    await runSign({ index: s.index, key: join(dir, 'k') });
    const signed = await readFile(s.index);
    expect(signed.toString()).toMatch(/\nsig ed25519 /);
    expect(await unzstd(`${s.index}.zst`)).toEqual(signed);
    expect((await readdir(join(dir, 's'))).filter((f) => f.startsWith('.tmp'))).toEqual([]);
  });
});
