import { generateKeyPairSync } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  appendSignature,
  type DecodedIndex,
  decodeIndex,
  encodeProfile,
  IndexFormatError,
  InvalidArgumentError,
  rawPublicKey,
  SignatureError,
  signIndex,
} from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReplicaProfile, dropStaleProfile } from '../src/replica-profile.js';
import { packImage, tempDir } from './helpers.js';

let work: string;
let cleanup: () => Promise<void>;
let store: string;
let img: DecodedIndex;
let other: DecodedIndex;

const key = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, raw: rawPublicKey(publicKey) };
};
const publisher = key();
const stranger = key();
const signed = (bytes: Uint8Array, k = publisher) => appendSignature(bytes, k.privateKey, k.raw);
const ids = (d: DecodedIndex) => [...d.index.uniqueRefs().keys()];
const profileOf = (d: DecodedIndex, blocks = ids(d).slice(0, 3)) =>
  encodeProfile(d.index.header.name, d.digest, blocks);
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir());
  store = join(work, 'store');
  await packImage(work, store, 'img', [['t', 256 * 1024]]);
  await packImage(work, store, 'other', [['t', 128 * 1024]], { seed: 9 });
  img = decodeIndex(await readFile(join(store, 'img.idx')));
  other = decodeIndex(await readFile(join(store, 'other.idx')));
}, 60_000);

afterAll(() => cleanup?.());

describe('checkReplicaProfile', () => {
  it('takes a profile bound to its index, unsigned beside an unsigned index or signed by a key of a signed one', () => {
    expect(checkReplicaProfile(profileOf(img), img, 'p').blocks).toEqual(ids(img).slice(0, 3));
    expect(checkReplicaProfile(signed(profileOf(img)), img, 'p').signatures).toHaveLength(1);
    const signedIndex = decodeIndex(signIndex(img.bytes, publisher.privateKey, publisher.raw));
    // Rotation: another key may sign too, as long as one of the index's keys does.
    expect(checkReplicaProfile(signed(signed(profileOf(img)), stranger), signedIndex, 'p').blocks).toHaveLength(3);
  });

  it("refuses what a client would refuse: garbage, another index's profile, a block the index does not name", () => {
    const bytes = Buffer.from(profileOf(img));
    const at = bytes.indexOf(ids(img)[0] as string); // one hex digit of a block id changed, the end digest not
    bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
    expect(() => checkReplicaProfile(bytes, img, 'p')).toThrow(IndexFormatError);
    expect(() => checkReplicaProfile(bytes, img, 'p')).toThrow(/does not match the profile body/);
    expect(() => checkReplicaProfile(profileOf(other), img, 'p')).toThrow(/recorded for index/);
    const foreign = encodeProfile('img', img.digest, [...ids(img).slice(0, 2), ids(other)[0] as string]);
    expect(() => checkReplicaProfile(foreign, img, 'p')).toThrow(InvalidArgumentError);
    expect(() => checkReplicaProfile(foreign, img, 'p')).toThrow(/does not reference/);
  });

  it('refuses a signature that does not verify, and a signed image whose profile its signer did not sign', () => {
    // Re-encoded with another block order (end digest recomputed), the old signature line kept: tampered.
    const good = signed(profileOf(img));
    const sigLine = Buffer.from(good).subarray(Buffer.from(good).lastIndexOf('sig ed25519'));
    const reordered = Buffer.concat([profileOf(img, ids(img).slice(0, 3).reverse()), sigLine]);
    expect(() => checkReplicaProfile(reordered, img, 'p')).toThrow(SignatureError);
    expect(() => checkReplicaProfile(reordered, img, 'p')).toThrow(/does not verify/);

    const signedIndex = decodeIndex(signIndex(img.bytes, publisher.privateKey, publisher.raw));
    expect(() => checkReplicaProfile(profileOf(img), signedIndex, 'p')).toThrow(/profile by none of them$/);
    expect(() => checkReplicaProfile(signed(profileOf(img), stranger), signedIndex, 'p')).toThrow(
      /profile by none of them \(only by /,
    );
  });
});

describe('dropStaleProfile', () => {
  it('removes only a profile bound to another index; keeps one that fits, and one it cannot read', async () => {
    const path = join(store, 'img.profile');
    expect(await dropStaleProfile(store, 'img', img.digest)).toBe(false); // none there

    await writeFile(path, profileOf(img));
    expect(await dropStaleProfile(store, 'img', img.digest)).toBe(false);
    expect(await exists(path)).toBe(true);

    expect(await dropStaleProfile(store, 'img', other.digest)).toBe(true);
    expect(await exists(path)).toBe(false);

    await writeFile(path, 'not a profile\n');
    expect(await dropStaleProfile(store, 'img', other.digest)).toBe(false);
    expect(await readFile(path, 'utf8')).toBe('not a profile\n');
  });
});
