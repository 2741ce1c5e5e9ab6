import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decideTrust, decodeIndex, verifyIndexSignatures } from '@thfc/format';
import { readTrustStore } from '@thfc/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveKeyArgument, runKeyAdd, runKeyList, runKeyRevoke, runKeyRotate } from '../src/key-commands.js';
import { runKeygen } from '../src/keygen.js';
import { runPack } from '../src/pack.js';
import { runCli, tempDir, testIo, writeImage } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('thfc-key-')));
afterEach(() => cleanup());

async function packed(name: string): Promise<string> {
  const img = join(dir, `${name}.img`);
  await writeImage(img, [['t', 9000]]);
  return (await runPack({ image: img, store: join(dir, 'store') }, testIo())).index;
}

/** What a client with this store decides about this index, now. */
async function clientDecision(index: string, store: string, now = new Date()) {
  const d = decodeIndex(await readFile(index));
  return decideTrust(verifyIndexSignatures(d), d.index.header.name, await readTrustStore([store]), now);
}

describe('resolveKeyArgument', () => {
  it('takes a key id, a base64 key, a public key file or a private key file', async () => {
    const k = await runKeygen({ keyFile: join(dir, 'k') });
    expect(await resolveKeyArgument(k.keyId)).toEqual({ keyId: k.keyId });
    for (const arg of [k.publicKey, join(dir, 'k.pub'), join(dir, 'k')]) {
      const r = await resolveKeyArgument(arg);
      expect([r.keyId, Buffer.from(r.publicKey ?? []).toString('base64')]).toEqual([k.keyId, k.publicKey]);
    }
    await writeFile(join(dir, 'junk'), 'junk');
    await expect(resolveKeyArgument(join(dir, 'junk'))).rejects.toThrow(/not an Ed25519 public key/);
  });
});

describe('key add, list and revoke', () => {
  it('add grants with limits, list shows each state now, revoke drops the grant and wins over other files', async () => {
    const store = join(dir, 'acme.trust');
    const [a, b] = [await runKeygen({ keyFile: join(dir, 'a') }), await runKeygen({ keyFile: join(dir, 'b') })];
    await runKeyAdd({ trustStore: store, key: join(dir, 'a.pub'), scope: ['debian-*'], label: 'release' });
    await runKeyAdd({ trustStore: store, key: b.publicKey, expires: '2020-01-01' });
    const listed = await runKeyList({ paths: [store] });
    expect(listed.keys.map((k) => [k.keyId, k.state, k.scope, k.expires])).toEqual([
      [a.keyId, 'trusted', ['debian-*'], null],
      [b.keyId, 'expired', null, '2020-01-01T00:00:00Z'],
    ]);
    const other = join(dir, 'other.trust');
    await runKeyAdd({ trustStore: other, key: a.publicKey });
    const r = await runKeyRevoke({ trustStore: store, key: a.keyId });
    expect(r).toMatchObject({ keyId: a.keyId, removedGrants: 1, added: true });
    expect((await runKeyRevoke({ trustStore: store, key: a.keyId })).added).toBe(false);
    const both = await runKeyList({ paths: [store, other] });
    expect(both.keys.map((k) => [k.keyId, k.state])).toEqual([
      [b.keyId, 'expired'],
      [a.keyId, 'revoked'],
    ]);
    expect(both.revocations.map((v) => v.keyId)).toEqual([a.keyId]);
    await expect(runKeyAdd({ trustStore: store, key: a.keyId })).rejects.toThrow(/needs the public key/);
    await expect(runKeyAdd({ trustStore: store, key: b.publicKey, expires: 'soon' })).rejects.toThrow(/not a UTC date/);
  });
});

describe('key rotate', () => {
  it('signs every index with both keys and grants the new one: clients trusting either key mount', async () => {
    const store = join(dir, 'acme.trust');
    await runKeygen({ keyFile: join(dir, 'old') });
    await runKeyAdd({ trustStore: store, key: join(dir, 'old.pub'), scope: ['img-*'] });
    const oldClient = join(dir, 'old-client.trust');
    await writeFile(oldClient, await readFile(store));
    const indexes = [await packed('img-a'), await packed('img-b')];
    const r = await runKeyRotate({
      oldKey: join(dir, 'old'),
      newKey: join(dir, 'new'),
      indexes,
      trustStore: store,
      retireOld: '2099-01-01',
    });
    expect(r.generated).toBe(true);
    expect(r.indexes.map((i) => i.signatures)).toEqual([2, 2]);
    const listed = await runKeyList({ paths: [store] });
    expect(listed.keys.map((k) => [k.keyId, k.scope, k.expires])).toEqual([
      [r.oldKeyId, ['img-*'], '2099-01-01T00:00:00Z'],
      [r.newKeyId, ['img-*'], null],
    ]);
    const newOnly = join(dir, 'new-only.trust');
    await runKeyAdd({ trustStore: newOnly, key: join(dir, 'new.pub') });
    for (const index of indexes) {
      expect(await clientDecision(index, oldClient)).toMatchObject({ accepted: true, keyId: r.oldKeyId });
      expect(await clientDecision(index, newOnly)).toMatchObject({ accepted: true, keyId: r.newKeyId });
    }
    // After the old key retires, the updated store still mounts through the new key.
    expect(await clientDecision(indexes[0] as string, store, new Date('2100-01-01'))).toMatchObject({
      accepted: true,
      keyId: r.newKeyId,
    });
    // Rotating again with the same keys is a no-op on the indexes.
    const again = await runKeyRotate({ oldKey: join(dir, 'old'), newKey: join(dir, 'new'), indexes });
    expect(again.generated).toBe(false);
    expect(again.indexes.map((i) => i.added)).toEqual([false, false]);
  });

  it('refuses the same key twice and a bad retire date, before touching any index', async () => {
    await runKeygen({ keyFile: join(dir, 'old') });
    const index = await packed('img');
    const before = await readFile(index);
    await expect(
      runKeyRotate({ oldKey: join(dir, 'old'), newKey: join(dir, 'old'), indexes: [index] }),
    ).rejects.toThrow(/same key/);
    await expect(
      runKeyRotate({ oldKey: join(dir, 'old'), newKey: join(dir, 'new'), indexes: [index], retireOld: 'never' }),
    ).rejects.toThrow(/--retire-old/);
    expect(await readFile(index)).toEqual(before);
  });
});

describe('thfc-pack key (CLI)', () => {
  it('key add, list --json, revoke and rotate run as commands', async () => {
    const store = join(dir, 'acme.trust');
    expect((await runCli(['keygen', join(dir, 'k')])).code).toBe(0);
    const add = await runCli(['key', 'add', store, join(dir, 'k.pub'), '--scope', 'a-*,b', '--expires', '2099-01-01']);
    expect(add.code, add.stderr).toBe(0);
    const list = await runCli(['key', 'list', store, '--json']);
    expect(JSON.parse(list.stdout).keys[0]).toMatchObject({ state: 'trusted', scope: ['a-*', 'b'] });
    const human = await runCli(['key', 'list', store]);
    expect(human.stdout).toMatch(/trusted expires 2099-01-01T00:00:00Z scope a-\*,b/);
    const index = await packed('img');
    const rot = await runCli(['key', 'rotate', join(dir, 'k'), join(dir, 'k2'), index, '--trust-store', store]);
    expect(rot.code, rot.stderr).toBe(0);
    expect(rot.stdout).toMatch(/rotated [0-9a-f]{16} -> [0-9a-f]{16} \(new key written to/);
    const rev = await runCli(['key', 'revoke', store, join(dir, 'k.pub')]);
    expect(rev.code, rev.stderr).toBe(0);
    expect((await runCli(['key', 'list', store])).stdout).toMatch(/revoked/);
    const bad = await runCli(['key', 'add', store, join(dir, 'nope.pub')]);
    expect([bad.code, bad.stderr]).toEqual([3, expect.stringMatching(/no such file/)]);
  });
});
