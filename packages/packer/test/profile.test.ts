import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeProfile, encodeProfile, UsageError } from '@thfc/format';
import { readIndexFile } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { runKeygen } from '../src/keygen.js';
import { runPack } from '../src/pack.js';
import { runProfileAdd } from '../src/profile.js';
import { runSign } from '../src/sign.js';
import { tempDir, testIo, writeImage } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A packed image (optionally signed by a new key) and a recording of its first two blocks. */
async function published(signed: boolean) {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  const img = join(t.dir, 'disk.img');
  await writeImage(img, [['t', 64 * 1024]]);
  const store = join(t.dir, 'store');
  await runPack({ image: img, store, blockSize: 16 * 1024 }, testIo());
  const index = join(store, 'disk.idx');
  const own = join(t.dir, 'own.key');
  const other = join(t.dir, 'other.key');
  await runKeygen({ keyFile: own });
  await runKeygen({ keyFile: other });
  if (signed) await runSign({ index, key: own });
  const decoded = await readIndexFile(index);
  const profile = join(t.dir, 'boot.profile');
  const ids = [...decoded.index.uniqueRefs().keys()].slice(0, 2);
  await writeFile(profile, encodeProfile('disk', decoded.digest, ids));
  return { index, profile, own, other, store };
}

describe('thfc-pack profile add', () => {
  it('an unsigned image: publishes the profile, signed or not', async () => {
    const p = await published(false);
    const r = await runProfileAdd({ index: p.index, profile: p.profile });
    expect(r).toMatchObject({ path: join(p.store, 'disk.profile'), blocks: 2, signedBy: undefined });
    expect(decodeProfile(await readFile(r.path)).signatures).toHaveLength(0);
    const signed = await runProfileAdd({ index: p.index, profile: p.profile, key: p.other });
    expect(decodeProfile(await readFile(signed.path)).signatures).toHaveLength(1);
  });

  it('a signed image: only a key that signed its index may sign the profile, and it must be signed', async () => {
    const p = await published(true);
    const none = await runProfileAdd({ index: p.index, profile: p.profile }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(UsageError);
    expect((none as Error).message).toMatch(
      /is signed by .*: sign its profile with one of those keys \(--key KEYFILE\);/,
    );
    const wrong = await runProfileAdd({ index: p.index, profile: p.profile, key: p.other }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(UsageError);
    expect((wrong as Error).message).toMatch(/, not [0-9a-f]+; clients that require signatures would ignore it/);
    await expect(readFile(join(p.store, 'disk.profile'))).rejects.toMatchObject({ code: 'ENOENT' });
    const ok = await runProfileAdd({ index: p.index, profile: p.profile, key: p.own });
    expect(ok.signedBy).toBeDefined();
    expect(decodeProfile(await readFile(ok.path)).signatures).toHaveLength(1);
  });
});
