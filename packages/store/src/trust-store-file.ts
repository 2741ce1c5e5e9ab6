import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  decodeTrustStore,
  emptyTrustStore,
  encodeTrustStore,
  fsError,
  keyIdOf,
  mergeTrustStores,
  parsePublicKey,
  TRUST_STORE_MAGIC,
  type TrustStore,
  type TrustStoreFile,
  TrustStoreFormatError,
  UsageError,
} from '@thfc/format';
import { writeFileAtomic } from './atomic-file.js';

/**
 * Reads trust stores from disk. A path is a trust-store file (`thfc-trust 1`),
 * a bare public key file (a key with no limits, as `--trust` takes), or a
 * directory of `*.trust` and `*.pub` files read in name order. Any other file
 * in a directory is an error, not skipped: a misnamed file of revocations
 * must not be silently ignored. Dot-files are skipped (editor and atomic-write
 * temporaries).
 */
export async function readTrustStoreFiles(path: string): Promise<TrustStoreFile[]> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    throw fsError(e, `trust store ${path}`);
  }
  if (!isDir) return [await readOne(path)];
  let names: string[];
  try {
    names = (await readdir(path)).filter((n) => !n.startsWith('.')).sort();
  } catch (e) {
    throw fsError(e, `trust store ${path}`);
  }
  const files: TrustStoreFile[] = [];
  for (const n of names) {
    if (!n.endsWith('.trust') && !n.endsWith('.pub')) {
      throw new UsageError(
        `trust store ${path}: unexpected file ${n} (only *.trust and *.pub files are read; move it away or rename it)`,
      );
    }
    files.push(await readOne(join(path, n)));
  }
  return files;
}

/** Every path's files merged into the one store a decision reads. */
export async function readTrustStore(paths: readonly string[]): Promise<TrustStore> {
  const files: TrustStoreFile[] = [];
  for (const p of paths) files.push(...(await readTrustStoreFiles(p)));
  return mergeTrustStores(files);
}

async function readOne(path: string): Promise<TrustStoreFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw fsError(e, `trust store ${path}`);
  }
  if (bytes.subarray(0, TRUST_STORE_MAGIC.length + 1).toString('latin1') === `${TRUST_STORE_MAGIC} `)
    return decodeTrustStore(bytes, path);
  let publicKey: Uint8Array;
  try {
    publicKey = parsePublicKey(bytes);
  } catch {
    throw new TrustStoreFormatError(
      `neither a trust store (first line "${TRUST_STORE_MAGIC} 1") nor a public key`,
      undefined,
      undefined,
      path,
    );
  }
  return { source: path, lines: [{ kind: 'key', publicKey, keyId: keyIdOf(publicKey), source: path }] };
}

/** One trust-store file for editing: a missing file is a new, empty store. */
export async function readTrustStoreForEdit(path: string): Promise<TrustStoreFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyTrustStore(path);
    throw fsError(e, `trust store ${path}`);
  }
  if (bytes.subarray(0, TRUST_STORE_MAGIC.length + 1).toString('latin1') !== `${TRUST_STORE_MAGIC} `) {
    throw new UsageError(
      `${path} is not a trust-store file (first line "${TRUST_STORE_MAGIC} 1"); refusing to edit it`,
    );
  }
  return decodeTrustStore(bytes, path);
}

/** Writes the file atomically (readers see the old store or the new one), keeping an existing file's mode. */
export async function writeTrustStoreFile(file: TrustStoreFile): Promise<void> {
  const mode = await stat(file.source).then(
    (s) => s.mode & 0o777,
    () => 0o644,
  );
  await writeFileAtomic(file.source, encodeTrustStore(file), { mode, durable: true });
}
