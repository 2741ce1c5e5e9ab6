import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  appendSignature,
  checkProfile,
  decodeProfile,
  encodeProfile,
  UsageError,
  verifyIndexSignatures,
} from '@thfc/format';
import { readIndexFile, readKeyFile, writeFileAtomic } from '@thfc/store';
import { fsError } from './errors.js';

export interface ProfileAddOptions {
  /** STORE/NAME.idx: the profile is published beside it as STORE/NAME.profile. */
  readonly index: string;
  /** A profile recorded by `httpstorged --record-profile` (or `thfc-vm boot --record-profile`). */
  readonly profile: string;
  /** Sign with this key; publish signed with the index's key so clients that trust the index trust the profile. */
  readonly key?: string | undefined;
}

export interface ProfileAddResult {
  readonly path: string;
  readonly blocks: number;
  readonly signedBy: string | undefined;
}

/**
 * Publishes a recorded boot profile beside its index, after checking that it
 * was recorded against exactly this index and names only its blocks (the rule
 * that stops a profile from steering clients to data their index does not
 * reference), then signing it.
 */
export async function runProfileAdd(options: ProfileAddOptions): Promise<ProfileAddResult> {
  const decoded = await readIndexFile(options.index);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(options.profile);
  } catch (e) {
    throw fsError(e, `profile ${options.profile}`);
  }
  const recorded = decodeProfile(bytes, options.profile);
  checkProfile(recorded, decoded.index, decoded.digest);
  let out = encodeProfile(recorded.image, recorded.index, recorded.blocks);
  const key = options.key ? await readKeyFile(options.key) : undefined;
  // A signed image's profile must be signed by one of its index's keys: clients that require signatures ignore
  // any other, and mirrors do not replicate it (docs/thfc-mirror.md, the replica check).
  const signers = verifyIndexSignatures(decoded)
    .filter((s) => s.valid)
    .map((s) => s.keyId);
  if (signers.length > 0 && !(key && signers.includes(key.keyId))) {
    throw new UsageError(
      `${options.index} is signed by ${signers.join(', ')}: sign its profile with one of those keys (--key KEYFILE)${key ? `, not ${key.keyId}` : ''}; clients that require signatures would ignore it, and mirrors would not replicate it`,
    );
  }
  if (key) out = appendSignature(out, key.privateKey, key.publicKey);
  const path = join(dirname(options.index), `${decoded.index.header.name}.profile`);
  await writeFileAtomic(path, out, { durable: true });
  return { path, blocks: recorded.blocks.length, signedBy: key?.keyId };
}
