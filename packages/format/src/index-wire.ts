import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { zstdCompress, zstdDecompressStream } from './codecs.js';
import { IndexFormatError } from './errors.js';

/**
 * Indexes on the wire (FORMAT.md §9): NAME.idx.zst beside NAME.idx holds one
 * zstd frame whose content is the index byte for byte, and HTTP carries an
 * index as `Content-Encoding: zstd` or `gzip`. The encoding is transport
 * only: the digest and the signatures cover the decoded bytes, so a reader
 * decodes first and then decodes the index exactly as if it had been plain.
 */
export const INDEX_ZST_SUFFIX = '.zst';

/**
 * zstd level 3: on a 4,194,304-entry index (201 MB) it gave 0.49× in 1.6 s;
 * level 19 gave 0.48× in 411 s, and level 9 was no smaller than 3. Hex
 * digests are incompressible, so levels cannot do much better.
 */
export const INDEX_ZSTD_LEVEL = 3;

/** The encodings a client of ours accepts for an index, best first. */
export const INDEX_ACCEPT_ENCODING = 'zstd, gzip';

export function compressIndex(bytes: Uint8Array): Uint8Array {
  return zstdCompress(bytes, INDEX_ZSTD_LEVEL);
}

/**
 * Decodes a response body in `encoding` (`zstd`, `gzip`, or none/identity)
 * to at most `maxBytes`: past that, it stops reading and throws
 * IndexFormatError, so a compressed bomb costs at most `maxBytes` of memory.
 * An encoding it does not know is an error too: the bytes could not be
 * checked, and guessing would hand garbage to the decoder.
 */
export async function decodeIndexBody(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  encoding: string | undefined,
  maxBytes: number,
  where: string,
): Promise<Buffer> {
  const name = (encoding ?? 'identity').trim().toLowerCase();
  const tooLarge = () => new IndexFormatError(`larger than ${maxBytes} bytes`, undefined, undefined, where);
  const chunks: Buffer[] = [];
  let n = 0;
  const take = (c: Uint8Array) => {
    n += c.length;
    if (n > maxBytes) throw tooLarge();
    chunks.push(Buffer.from(c.buffer, c.byteOffset, c.length));
  };
  if (name === 'identity' || name === '') {
    for await (const c of body) take(c);
    return Buffer.concat(chunks, n);
  }
  if (name !== 'zstd' && name !== 'gzip' && name !== 'x-gzip') {
    throw new IndexFormatError(
      `sent in an encoding we did not ask for (${name.slice(0, 40)})`,
      undefined,
      undefined,
      where,
    );
  }
  let bodyError: unknown;
  const source = Readable.from(
    (async function* () {
      try {
        for await (const c of body) yield c;
      } catch (e) {
        bodyError = e;
        throw e;
      }
    })(),
    { objectMode: false },
  );
  const sink = new Writable({
    write(c: Buffer, _encoding, done) {
      try {
        take(c);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
  try {
    await pipeline(source, name === 'zstd' ? zstdDecompressStream() : createGunzip(), sink);
  } catch (e) {
    // The body's own failure (a reset, a timeout) is the transport's, not the encoding's: pass it on as it is.
    if (bodyError !== undefined) throw bodyError;
    if (e instanceof IndexFormatError) throw e;
    throw new IndexFormatError(`bad ${name} encoding: ${(e as Error).message}`, undefined, undefined, where);
  }
  return Buffer.concat(chunks, n);
}
