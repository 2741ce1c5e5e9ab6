import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKey, InputError, keyIdOf, parsePublicKey, SignatureError } from '@thfc/format';
import { readKeyFile, readPublicKey } from '@thfc/store';
import { tempDir } from '@thfc/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('thfc-key-file-')));
afterEach(() => cleanup());

describe('readPublicKey (httpstorged --trust, thfc-pack inspect --key)', () => {
  it('takes a PEM file, a bare base64 file, or the base64 itself', async () => {
    const k = generateSigningKey();
    const raw = parsePublicKey(k.publicKeyPem);
    const b64 = Buffer.from(raw).toString('base64');
    await writeFile(join(dir, 'k.pub'), k.publicKeyPem);
    await writeFile(join(dir, 'k.b64'), `${b64}\n`);
    for (const arg of [join(dir, 'k.pub'), join(dir, 'k.b64'), b64]) {
      expect(keyIdOf(await readPublicKey(arg))).toBe(k.keyId);
    }
  });

  it('a missing file is InputError naming it; a file that is not a key is SignatureError naming it', async () => {
    const missing = join(dir, 'missing.pub');
    const e = await readPublicKey(missing).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toBe(`public key ${missing}: no such file or directory`);
    await writeFile(join(dir, 'bad.pub'), 'not a key\n');
    const bad = await readPublicKey(join(dir, 'bad.pub')).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(SignatureError);
    expect((bad as Error).message.startsWith(`${join(dir, 'bad.pub')}: `)).toBe(true);
  });
});

describe('readKeyFile (thfc-pack --key)', () => {
  it('reads a private key and derives its public key and key id', async () => {
    const k = generateSigningKey();
    await writeFile(join(dir, 'k'), k.privateKeyPem);
    const key = await readKeyFile(join(dir, 'k'));
    expect(key.keyId).toBe(k.keyId);
    expect(Buffer.from(key.publicKey)).toEqual(Buffer.from(parsePublicKey(k.publicKeyPem)));
  });

  it('a file that is not a private key says how to make one', async () => {
    await writeFile(join(dir, 'k'), generateSigningKey().publicKeyPem);
    const e = await readKeyFile(join(dir, 'k')).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(SignatureError);
    expect((e as Error).message).toMatch(/\(make one with: thfc-pack keygen .*\/k\)$/);
  });
});
