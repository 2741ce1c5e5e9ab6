import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { indexFileName, SignatureError, signIndex, verifyIndexSignatures } from '@thfc/format';
import { readIndexFile, readKeyFile, VersionStore, writeIndexFiles } from '@thfc/store';

export interface SignOptions {
  readonly index: string;
  readonly key: string;
}

export interface SignResult {
  readonly index: string;
  readonly keyId: string;
  /** False when the index already carried a valid signature by this key. */
  readonly added: boolean;
  readonly signatures: number;
}

/**
 * Appends a signature by `key`. Refuses an index whose existing signatures do
 * not verify: a new signature over tampered bytes would vouch for them.
 */
export async function runSign(options: SignOptions): Promise<SignResult> {
  const key = await readKeyFile(options.key);
  const decoded = await readIndexFile(options.index);
  const checks = verifyIndexSignatures(decoded);
  const bad = checks.find((c) => !c.valid);
  if (bad)
    throw new SignatureError(`${options.index}: existing signature by ${bad.keyId} does not verify; refusing to sign`);
  if (checks.some((c) => c.keyId === key.keyId)) {
    return { index: options.index, keyId: key.keyId, added: false, signatures: checks.length };
  }
  const mode = (await stat(options.index)).mode & 0o777;
  const signed = signIndex(decoded.bytes, key.privateKey, key.publicKey);
  await writeIndexFiles(options.index, signed, { mode });
  // STORE/NAME.idx has a retained copy (docs/FORMAT.md §5.9): it carries the same signatures.
  const name = decoded.index.header.name;
  if (basename(options.index) === indexFileName(name))
    await new VersionStore(dirname(options.index)).refresh(name, signed);
  return { index: options.index, keyId: key.keyId, added: true, signatures: checks.length + 1 };
}
