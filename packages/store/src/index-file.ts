import { open, readFile, stat } from 'node:fs/promises';
import { type DecodedIndex, decodeIndex, fsError, IndexFormatError, InputError, UsageError } from '@thfc/format';

/**
 * Reads and strictly decodes an index file. A directory gets a hint that a
 * store was given where an index belongs; garbage gets the decoder's
 * line-and-field message prefixed with the path.
 */
export async function readIndexFile(path: string): Promise<DecodedIndex> {
  let bytes: Buffer;
  try {
    const st = await stat(path);
    if (st.isDirectory()) {
      throw new UsageError(`${path} is a directory (a store?); expected an index file such as ${path}/NAME.idx`);
    }
    bytes = await readFile(path);
  } catch (e) {
    throw fsError(e, path);
  }
  if (bytes.length === 0) throw new InputError(`${path}: empty file, not an index`);
  try {
    return decodeIndex(bytes);
  } catch (e) {
    if (e instanceof IndexFormatError) {
      throw new IndexFormatError(e.reason, e.line, e.field, path);
    }
    throw e;
  }
}

/** True when the file starts like a thfc index: used to catch an index passed where an image or store belongs. */
export async function looksLikeIndex(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(11);
      const { bytesRead } = await fh.read(buf, 0, 11, 0);
      return buf.subarray(0, bytesRead).toString('latin1') === 'thfc-index ';
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}
