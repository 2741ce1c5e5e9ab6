import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeIndex, verifyIndexSignatures } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runInspect } from '../src/inspect.js';
import { runKeygen } from '../src/keygen.js';
import { runPack } from '../src/pack.js';
import { runSign } from '../src/sign.js';
import { tempDir, testIo, writeImage } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe('keygen, sign and inspect', () => {
  it('keygen writes a 0600 private key and a public key, and never overwrites without --force', async () => {
    const key = join(dir, 'k');
    const a = await runKeygen({ keyFile: key });
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect(await readFile(`${key}.pub`, 'utf8')).toMatch(/BEGIN PUBLIC KEY/);
    expect(a.publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    await expect(runKeygen({ keyFile: key })).rejects.toThrow(/already exists/);
    const b = await runKeygen({ keyFile: key, force: true });
    expect(b.keyId).not.toBe(a.keyId);
  });

  it('sign appends signatures for rotation; each verifies; re-signing is a no-op', async () => {
    const img = join(dir, 'i.img');
    await writeImage(img, [['t', 9000]]);
    const s = await runPack({ image: img, store: join(dir, 's') }, testIo());
    const old = await runKeygen({ keyFile: join(dir, 'old') });
    const neu = await runKeygen({ keyFile: join(dir, 'new') });
    expect((await runSign({ index: s.index, key: join(dir, 'old') })).added).toBe(true);
    expect((await runSign({ index: s.index, key: join(dir, 'new') })).signatures).toBe(2);
    expect((await runSign({ index: s.index, key: join(dir, 'new') })).added).toBe(false);
    const d = decodeIndex(await readFile(s.index));
    expect(verifyIndexSignatures(d).map((v) => [v.keyId, v.valid])).toEqual([
      [old.keyId, true],
      [neu.keyId, true],
    ]);
    expect(d.digest).toBe(s.digest); // signatures do not change the identity
    const r = await runInspect({ index: s.index, trust: [`${join(dir, 'new')}.pub`] });
    expect(r.trusted).toBe(true);
    const other = await runKeygen({ keyFile: join(dir, 'other') });
    expect((await runInspect({ index: s.index, trust: [other.publicKey] })).trusted).toBe(false);
  });

  it('refuses to sign over a signature that no longer verifies', async () => {
    const img = join(dir, 'i.img');
    await writeImage(img, [['t', 9000]]);
    await runKeygen({ keyFile: join(dir, 'k') });
    const s = await runPack({ image: img, store: join(dir, 's'), sign: join(dir, 'k') }, testIo());
    const text = await readFile(s.index, 'utf8');
    // Forge: keep the structure valid but swap the signature bytes.
    const lines = text.trimEnd().split('\n');
    const sig = (lines.at(-1) as string).split(' ');
    sig[4] = Buffer.alloc(64, 1).toString('base64');
    lines[lines.length - 1] = sig.join(' ');
    await writeFile(s.index, `${lines.join('\n')}\n`);
    await runKeygen({ keyFile: join(dir, 'k2') });
    await expect(runSign({ index: s.index, key: join(dir, 'k2') })).rejects.toThrow(/does not verify/);
    expect((await runInspect({ index: s.index })).signatures[0]?.valid).toBe(false);
  });

  it('rejects a key file that is not a private key', async () => {
    const img = join(dir, 'i.img');
    await writeImage(img, [['t', 9000]]);
    await writeFile(join(dir, 'bad'), 'hello');
    await expect(runPack({ image: img, store: join(dir, 's'), sign: join(dir, 'bad') }, testIo())).rejects.toThrow(
      /not a PEM private key/,
    );
  });
});
