import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { emptyTrustStore, generateSigningKey, grantKey, keyIdOf, parsePublicKey } from '@thfc/format';
import { tempDir } from '@thfc/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  readTrustStore,
  readTrustStoreFiles,
  readTrustStoreForEdit,
  writeTrustStoreFile,
} from '../src/trust-store-file.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('thfc-trust-file-')));
afterEach(() => cleanup());

const newKey = () => generateSigningKey();

describe('readTrustStore', () => {
  it('reads a trust-store file, a bare public key file, and a directory of both in name order', async () => {
    const [a, b, c] = [newKey(), newKey(), newKey()];
    const d = join(dir, 'trust.d');
    await mkdir(d);
    const aRaw = parsePublicKey(a.publicKeyPem);
    await writeFile(join(d, '20-acme.trust'), `thfc-trust 1\nkey ${Buffer.from(aRaw).toString('base64')} scope=x\n`);
    await writeFile(join(d, '10-b.pub'), b.publicKeyPem);
    await writeFile(join(d, '.30-c.trust.swp'), 'junk'); // dot-files are skipped
    await writeFile(join(dir, 'c.pub'), c.publicKeyPem);
    const store = await readTrustStore([d, join(dir, 'c.pub')]);
    expect(store.grants.map((g) => g.keyId)).toEqual([b.keyId, a.keyId, c.keyId]);
    expect(store.grants[1]?.source).toBe(`${join(d, '20-acme.trust')} line 2`);
    expect(store.sources).toEqual([join(d, '10-b.pub'), join(d, '20-acme.trust'), join(dir, 'c.pub')]);
  });

  it('refuses an unexpected file in a directory rather than skipping it', async () => {
    const d = join(dir, 'trust.d');
    await mkdir(d);
    await writeFile(join(d, 'revocations.txt'), 'thfc-trust 1\n');
    await expect(readTrustStoreFiles(d)).rejects.toThrow(/unexpected file revocations\.txt/);
  });

  it('names the file and line of a malformed store, and says when a file is neither kind', async () => {
    const f = join(dir, 'bad.trust');
    await writeFile(f, 'thfc-trust 1\nkey nope\n');
    await expect(readTrustStore([f])).rejects.toThrow(`${f}: line 2 (public-key)`);
    await writeFile(f, 'hello\n');
    await expect(readTrustStore([f])).rejects.toThrow(/neither a trust store .* nor a public key/);
    await expect(readTrustStore([join(dir, 'missing')])).rejects.toThrow(/no such file/);
  });
});

describe('editing', () => {
  it('a missing file edits as an empty store; writes are atomic and keep the mode', async () => {
    const f = join(dir, 'acme.trust');
    const k = parsePublicKey(newKey().publicKeyPem);
    const empty = await readTrustStoreForEdit(f);
    await writeTrustStoreFile(grantKey(empty, k));
    expect((await stat(f)).mode & 0o777).toBe(0o644);
    expect((await readTrustStore([f])).grants[0]?.keyId).toBe(keyIdOf(k));
    await chmod(f, 0o600);
    await writeTrustStoreFile(grantKey(await readTrustStoreForEdit(f), k, { label: 'x' }));
    expect((await stat(f)).mode & 0o777).toBe(0o600);
  });

  it('refuses to edit something that is not a trust-store file', async () => {
    const f = join(dir, 'k.pub');
    await writeFile(f, newKey().publicKeyPem);
    await expect(readTrustStoreForEdit(f)).rejects.toThrow(/not a trust-store file/);
    expect(emptyTrustStore('x').lines).toHaveLength(2);
  });
});
