import { mkdir } from 'node:fs/promises';
import { fsError } from '@thfc/format';
import { type AttestationKeyFiles, Tpm2Tools } from './tpm.js';

export interface AkOptions {
  /** Directory for ak.ctx, ak.pub.pem and ak.name (created if missing). */
  readonly dir: string;
  readonly tcti?: string | undefined;
}

/** Creates an attestation key in the TPM; the verifier is given DIR/ak.pub.pem. */
export async function runAk(options: AkOptions, signal?: AbortSignal): Promise<AttestationKeyFiles> {
  try {
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fsError(e, options.dir);
  }
  return new Tpm2Tools({ tcti: options.tcti }).createAttestationKey(options.dir, signal);
}
