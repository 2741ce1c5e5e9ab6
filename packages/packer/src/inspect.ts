import { type IndexHeader, verifyIndexSignatures } from '@thfc/format';
import { readIndexFile, readPublicKey } from '@thfc/store';

export interface InspectOptions {
  readonly index: string;
  /** Public keys (files or base64) whose signatures count as trusted. */
  readonly trust?: readonly string[] | undefined;
}

export interface InspectReport {
  readonly path: string;
  readonly header: IndexHeader;
  readonly digest: string;
  readonly indexBytes: number;
  readonly blocks: number;
  readonly zeroBlocks: number;
  readonly uniqueBlocks: number;
  readonly storedBytes: number;
  readonly signatures: { keyId: string; publicKey: string; valid: boolean; trusted: boolean | undefined }[];
  /** With trust keys: whether a valid signature by one of them is present. */
  readonly trusted: boolean | undefined;
}

export async function runInspect(options: InspectOptions): Promise<InspectReport> {
  const decoded = await readIndexFile(options.index);
  const trustKeys = await Promise.all((options.trust ?? []).map(readPublicKey));
  const trustB64 = new Set(trustKeys.map((k) => Buffer.from(k).toString('base64')));
  const counts = decoded.index.counts();
  const signatures = verifyIndexSignatures(decoded).map((s) => {
    const publicKey = Buffer.from(s.publicKey).toString('base64');
    return {
      keyId: s.keyId,
      publicKey,
      valid: s.valid,
      trusted: trustKeys.length ? s.valid && trustB64.has(publicKey) : undefined,
    };
  });
  return {
    path: options.index,
    header: decoded.index.header,
    digest: decoded.digest,
    indexBytes: decoded.bytes.length,
    blocks: counts.blocks,
    zeroBlocks: counts.zero,
    uniqueBlocks: counts.unique,
    storedBytes: counts.storedBytes,
    signatures,
    trusted: trustKeys.length ? signatures.some((s) => s.trusted) : undefined,
  };
}
