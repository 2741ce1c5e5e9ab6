import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BootProfile,
  checkProfile,
  type DecodedIndex,
  decodeProfile,
  fsError,
  SignatureError,
  verifyIndexSignatures,
  verifyInlineSignatures,
} from '@thfc/format';
import { writeFileAtomic } from '@thfc/store';

/**
 * The check a mirror applies before it publishes a boot profile it got from
 * an upstream (sync and pull-through alike), against the index it publishes
 * beside it. A mirror has no trust policy, so it checks everything that can
 * be checked without one:
 *
 * 1. it decodes strictly (decodeProfile: the `end` digest covers the body);
 * 2. the client's rule, checkProfile: bound to this index (its digest and
 *    image name), listing only blocks the index references;
 * 3. every signature on it verifies (one that does not means the profile was
 *    changed after it was signed);
 * 4. when the index carries valid signatures, the profile carries a valid
 *    signature by one of the same keys. `thfc-pack profile add --key` signs
 *    with the index's key; a profile signed by no key of a signed image was
 *    not published by its signer, and clients that trust the image would
 *    ignore it anyway. So a mirror in a chain cannot slip its own profile in
 *    for a signed image.
 *
 * Returns the decoded profile; throws IndexFormatError (1),
 * InvalidArgumentError (2) or SignatureError (3, 4).
 */
export function checkReplicaProfile(bytes: Uint8Array, index: DecodedIndex, source: string): BootProfile {
  const profile = decodeProfile(bytes, source);
  checkProfile(profile, index.index, index.digest);
  const checked = verifyInlineSignatures(profile.bytes, profile.signatures);
  const bad = checked.find((s) => !s.valid);
  if (bad) {
    throw new SignatureError(
      `the signature by key ${bad.keyId} does not verify (the profile was changed after signing)`,
    );
  }
  const indexKeys = verifyIndexSignatures(index).filter((s) => s.valid);
  if (indexKeys.length > 0) {
    const signers = new Set(indexKeys.map((s) => Buffer.from(s.publicKey).toString('hex')));
    if (!checked.some((s) => signers.has(Buffer.from(s.publicKey).toString('hex')))) {
      throw new SignatureError(
        `the index is signed by ${indexKeys.map((s) => s.keyId).join(', ')} and the profile by none of them${checked.length ? ` (only by ${checked.map((s) => s.keyId).join(', ')})` : ''}`,
      );
    }
  }
  return profile;
}

/**
 * Removes STORE/NAME.profile when it is bound to another index than
 * `indexDigest`: called after NAME.idx is (re)published, so a profile of an
 * older index is not left beside the new one. (Such a profile is harmless,
 * since clients check the binding and ignore it, but it is useless and
 * costs every mount a request and a log line.) A profile that does not
 * decode, or that names this index, is left alone. True when one was removed.
 */
export async function dropStaleProfile(storeRoot: string, name: string, indexDigest: string): Promise<boolean> {
  const path = join(storeRoot, `${name}.profile`);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(e, path);
  }
  let boundTo: string;
  try {
    boundTo = decodeProfile(bytes, path).index;
  } catch {
    return false;
  }
  if (boundTo === indexDigest) return false;
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(e, path);
  }
  return true;
}

/**
 * Publishes a profile that passed checkReplicaProfile as STORE/NAME.profile
 * (temp + fsync + rename), unless the store already holds these bytes. True
 * when it was written, false when it was unchanged; rejects only as the
 * write does.
 */
export async function publishProfile(
  storeRoot: string,
  name: string,
  bytes: Uint8Array,
  signal: AbortSignal,
): Promise<boolean> {
  const path = join(storeRoot, `${name}.profile`);
  const local = await readFile(path).catch(() => undefined);
  if (local && Buffer.compare(local, bytes) === 0) return false;
  await writeFileAtomic(path, bytes, { durable: true, signal });
  return true;
}
