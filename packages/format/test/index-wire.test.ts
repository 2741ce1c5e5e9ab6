import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressIndex, decodeIndexBody, IndexFormatError } from '../src/index.js';

const chunked = (b: Uint8Array, size = 1000): AsyncIterable<Uint8Array> => {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
  return Readable.from(parts);
};

describe('indexes on the wire', () => {
  const text = Buffer.from('thfc-index 1\n'.repeat(5000));

  it('zstd, gzip and identity bodies decode to the bytes', async () => {
    const z = compressIndex(text);
    expect(z.length).toBeLessThan(text.length / 10);
    expect(await decodeIndexBody(chunked(z), 'zstd', 1e6, 'x')).toEqual(text);
    expect(await decodeIndexBody(chunked(gzipSync(text)), 'gzip', 1e6, 'x')).toEqual(text);
    expect(await decodeIndexBody(chunked(text), undefined, 1e6, 'x')).toEqual(text);
    expect(await decodeIndexBody(chunked(text), 'identity', 1e6, 'x')).toEqual(text);
  });

  it('stops a compressed bomb at the bound', async () => {
    const bomb = compressIndex(Buffer.alloc(50e6));
    expect(bomb.length).toBeLessThan(10_000);
    await expect(decodeIndexBody(chunked(bomb), 'zstd', 1e6, 'x')).rejects.toThrow(/larger than 1000000 bytes/);
    await expect(decodeIndexBody(chunked(gzipSync(Buffer.alloc(5e6))), 'gzip', 1e6, 'x')).rejects.toThrow(
      IndexFormatError,
    );
  });

  it('refuses truncated or garbled bodies and encodings it did not ask for', async () => {
    const z = compressIndex(text);
    await expect(decodeIndexBody(chunked(z.subarray(0, z.length - 5)), 'zstd', 1e6, 'x')).rejects.toThrow(
      /bad zstd encoding/,
    );
    await expect(decodeIndexBody(chunked(text), 'gzip', 1e6, 'x')).rejects.toThrow(/bad gzip encoding/);
    await expect(decodeIndexBody(chunked(text), 'br', 1e6, 'x')).rejects.toThrow(/did not ask for \(br\)/);
  });

  it("passes the body's own failure on unchanged", async () => {
    const boom = new Error('reset');
    const body = (async function* () {
      yield compressIndex(text).subarray(0, 10);
      throw boom;
    })();
    await expect(decodeIndexBody(body, 'zstd', 1e6, 'x')).rejects.toBe(boom);
  });
});
