import { stat } from 'node:fs/promises';
import { generateSigningKey, parsePublicKey } from '@thfc/format';
import { writeFileAtomic } from '@thfc/store';
import { UsageError } from './errors.js';

export interface KeygenOptions {
  readonly keyFile: string;
  /** Replace an existing key. Without it an existing key is never overwritten: losing a key loses the ability to sign. */
  readonly force?: boolean | undefined;
}

export interface KeygenResult {
  readonly keyFile: string;
  readonly publicKeyFile: string;
  readonly keyId: string;
  /** Base64 of the raw 32-byte key: what `--trust` accepts on a command line. */
  readonly publicKey: string;
}

export async function runKeygen(options: KeygenOptions): Promise<KeygenResult> {
  const pubFile = `${options.keyFile}.pub`;
  if (!options.force) {
    for (const f of [options.keyFile, pubFile]) {
      if (
        await stat(f).then(
          () => true,
          () => false,
        )
      ) {
        throw new UsageError(`${f} already exists; refusing to overwrite a key (use --force to replace it)`);
      }
    }
  }
  const pair = generateSigningKey();
  await writeFileAtomic(options.keyFile, Buffer.from(pair.privateKeyPem), { mode: 0o600, durable: true });
  await writeFileAtomic(pubFile, Buffer.from(pair.publicKeyPem), { mode: 0o644, durable: true });
  return {
    keyFile: options.keyFile,
    publicKeyFile: pubFile,
    keyId: pair.keyId,
    publicKey: Buffer.from(parsePublicKey(pair.publicKeyPem)).toString('base64'),
  };
}
