import { randomBytes } from 'node:crypto';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import zstd from 'zstd-napi/binding.js';
import {
  CODECS,
  classifyStored,
  DEFAULT_CODEC,
  decodeBlock,
  encodeBlock,
  encodeBound,
  formatCodecSpec,
  isCodec,
  parseCodecSpec,
  sniffCodec,
} from '../src/codecs.js';
import { BlockCorruptError, InvalidArgumentError } from '../src/errors.js';

/** Compressible but not trivial: short runs of a few symbols, like a file system's metadata. */
function textish(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = 97 + ((x >>> 16) % 6);
  }
  return out;
}

/** Calls `fn`, which must throw BlockCorruptError, and returns the elapsed ms and growth of ArrayBuffer memory. */
function expectCorruptCheaply(fn: () => unknown): { ms: number; grew: number } {
  const before = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  const ms = performance.now() - t0;
  const grew = process.memoryUsage().arrayBuffers - before;
  expect(thrown).toBeInstanceOf(BlockCorruptError);
  return { ms, grew };
}

describe('parseCodecSpec / formatCodecSpec', () => {
  it('reads codecs with and without levels, with zstd:3 the default', () => {
    expect(parseCodecSpec('zstd')).toEqual({ codec: 'zstd', level: 3 });
    expect(parseCodecSpec('zstd:19')).toEqual({ codec: 'zstd', level: 19 });
    expect(parseCodecSpec('zlib')).toEqual({ codec: 'zlib', level: 6 });
    expect(parseCodecSpec('zlib:1')).toEqual({ codec: 'zlib', level: 1 });
    expect(parseCodecSpec('none')).toEqual({ codec: 'none', level: 0 });
    expect(DEFAULT_CODEC).toEqual({ codec: 'zstd', level: 3 });
  });

  it('formats the canonical spelling, and parse∘format is the identity on it', () => {
    expect(formatCodecSpec({ codec: 'zstd', level: 3 })).toBe('zstd:3');
    expect(formatCodecSpec({ codec: 'zlib', level: 9 })).toBe('zlib:9');
    expect(formatCodecSpec({ codec: 'none', level: 0 })).toBe('none');
    for (const s of ['zstd:1', 'zstd:19', 'zlib:1', 'zlib:9', 'none'])
      expect(formatCodecSpec(parseCodecSpec(s))).toBe(s);
  });

  it('rejects unknown codecs, bad syntax and out-of-range levels', () => {
    const bad = ['', 'gzip', 'ZSTD', 'zstd:', 'zstd:x', 'zstd:-1', 'zstd:0', 'zstd:20', 'zlib:0', 'zlib:10', 'none:1'];
    for (const text of [...bad, ' zstd', 'zstd:3 ', 'zstd:3:1']) {
      expect(() => parseCodecSpec(text), text).toThrow(InvalidArgumentError);
    }
    expect(() => parseCodecSpec('zstd:20')).toThrow(/bad level 20 for zstd: expected 1-19/);
  });

  it('isCodec knows exactly the three stored codecs', () => {
    expect([...CODECS]).toEqual(['zstd', 'zlib', 'none']);
    expect(CODECS.every(isCodec)).toBe(true);
    expect(isCodec('zero')).toBe(false);
    expect(isCodec('gzip')).toBe(false);
  });
});

describe('encodeBlock / decodeBlock', () => {
  it.each([
    ['zstd', 1],
    ['zstd', 3],
    ['zstd', 9],
    ['zstd', 19],
    ['zlib', 1],
    ['zlib', 6],
    ['zlib', 9],
  ] as const)('round-trips %s level %i, smaller than the input', (codec, level) => {
    for (const size of [4096, 65536 + 17, 262144]) {
      const data = textish(size, level);
      const enc = encodeBlock(data, { codec, level });
      expect(enc.codec).toBe(codec);
      expect(enc.bytes.length).toBeLessThanOrEqual(size - (size >>> 5));
      expect(sniffCodec(enc.bytes, size)).toBe(codec);
      const dec = decodeBlock(enc.bytes, enc.codec, size);
      expect(Buffer.from(dec).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('decodes a zstd block straight into a caller buffer, with no buffer of its own', () => {
    const data = textish(65536, 3);
    const enc = encodeBlock(data, { codec: 'zstd', level: 3 });
    const into = new Uint8Array(65536 + 100);
    const dec = decodeBlock(enc.bytes, 'zstd', 65536, 'id', 'test', into);
    expect(dec.buffer).toBe(into.buffer);
    expect(dec.length).toBe(65536);
    expect(Buffer.from(dec).equals(Buffer.from(data))).toBe(true);
    // Too small a buffer is not used.
    expect(decodeBlock(enc.bytes, 'zstd', 65536, 'id', 'test', new Uint8Array(10)).buffer).not.toBe(into.buffer);
  });

  it('compresses a zstd block into a caller scratch buffer: the same bytes, with no buffer of its own', () => {
    const data = textish(65536, 4);
    const own = encodeBlock(data, { codec: 'zstd', level: 3 });
    const scratch = new Uint8Array(encodeBound(data.length));
    const into = encodeBlock(data, { codec: 'zstd', level: 3 }, scratch);
    expect(into.codec).toBe('zstd');
    expect(into.bytes.buffer).toBe(scratch.buffer);
    expect(Buffer.from(into.bytes).equals(Buffer.from(own.bytes))).toBe(true);
    // Incompressible input is kept raw (the input itself); zlib ignores the scratch.
    const random = new Uint8Array(randomBytes(65536));
    expect(encodeBlock(random, { codec: 'zstd', level: 3 }, scratch).bytes).toBe(random);
    expect(encodeBlock(data, { codec: 'zlib', level: 6 }, scratch).bytes.buffer).not.toBe(scratch.buffer);
    // Too small a scratch is refused rather than overrun.
    expect(() => encodeBlock(data, { codec: 'zstd', level: 3 }, new Uint8Array(100))).toThrow(InvalidArgumentError);
  });

  it('stores `none` as the input itself', () => {
    const data = textish(4096);
    const enc = encodeBlock(data, { codec: 'none', level: 0 });
    expect(enc.codec).toBe('none');
    expect(enc.bytes).toBe(data);
    expect(decodeBlock(enc.bytes, 'none', 4096)).toBe(data);
  });

  it('returns a copy that does not alias a reused compression buffer', () => {
    const a = encodeBlock(textish(8192, 1), { codec: 'zstd', level: 3 });
    const snapshot = Buffer.from(a.bytes);
    encodeBlock(textish(8192, 2), { codec: 'zstd', level: 3 });
    expect(Buffer.from(a.bytes).equals(snapshot)).toBe(true);
    expect(a.bytes.byteLength).toBe(a.bytes.buffer.byteLength);
  });

  it('falls back to none when compression does not pay (random data)', () => {
    for (const codec of ['zstd', 'zlib'] as const) {
      const data = randomBytes(65536);
      const enc = encodeBlock(data, { codec, level: 9 });
      expect(enc.codec).toBe('none');
      expect(enc.bytes).toBe(data);
    }
  });

  it('falls back to none when it saves less than 1/32', () => {
    // 4096 bytes: 3968 random then 128 zeros. Compression saves ~120 bytes, under the 128 needed.
    const data = new Uint8Array(4096);
    data.set(randomBytes(3968));
    const zstdOut = encodeBlock(data, { codec: 'zstd', level: 19 });
    expect(zstdOut.codec).toBe('none');
    // With 1024 zeros at the end it pays.
    data.fill(0, 3072);
    expect(encodeBlock(data, { codec: 'zstd', level: 3 }).codec).toBe('zstd');
  });

  it('never keeps a compressed block that is not strictly smaller, even for tiny last blocks', () => {
    // 17 equal bytes compress to exactly 17 bytes with zstd, 11 to 11 with zlib: 1/32 of them rounds to 0.
    for (const codec of ['zstd', 'zlib'] as const) {
      for (let n = 1; n <= 64; n++) {
        for (const fill of [0, 1, 0x41]) {
          const enc = encodeBlock(new Uint8Array(n).fill(fill), { codec, level: 3 });
          if (enc.codec !== 'none') expect(enc.bytes.length, `${codec} ${n}×${fill}`).toBeLessThan(n);
          else expect(enc.bytes.length).toBe(n);
          expect(sniffCodec(enc.bytes, n)).toBe(enc.codec);
        }
      }
    }
  });

  it('keeps an empty input as none', () => {
    expect(encodeBlock(new Uint8Array(0), { codec: 'zstd', level: 3 }).codec).toBe('none');
  });
});

describe('decodeBlock rejects bad stored bytes with BlockCorruptError', () => {
  const size = 8192;
  const data = textish(size);
  const zs = encodeBlock(data, { codec: 'zstd', level: 3 }).bytes;
  const zl = encodeBlock(data, { codec: 'zlib', level: 6 }).bytes;

  it('names the block and source', () => {
    try {
      decodeBlock(zs.subarray(0, 5), 'zstd', size, 'abc123', 'http(a)');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BlockCorruptError);
      expect((e as BlockCorruptError).blockId).toBe('abc123');
      expect((e as BlockCorruptError).source).toBe('http(a)');
      expect((e as BlockCorruptError).code).toBe('ERR_BLOCK_CORRUPT');
    }
  });

  it('raw blocks of the wrong length', () => {
    expect(() => decodeBlock(data.subarray(1), 'none', size)).toThrow(/raw block is 8191 bytes, expected 8192/);
    expect(() => decodeBlock(new Uint8Array(size + 1), 'none', size)).toThrow(BlockCorruptError);
  });

  it('compressed blocks that are not smaller than the block', () => {
    expect(() => decodeBlock(new Uint8Array(size), 'zstd', size)).toThrow(/not smaller/);
    expect(() => decodeBlock(new Uint8Array(size), 'zlib', size)).toThrow(BlockCorruptError);
  });

  it('truncated frames and streams, at every cut', () => {
    for (const [codec, bytes] of [
      ['zstd', zs],
      ['zlib', zl],
    ] as const) {
      const cuts = [...Array(bytes.length).keys()].filter((c) => c < 64 || c > bytes.length - 64 || c % 31 === 0);
      for (const cut of cuts) {
        expect(() => decodeBlock(bytes.subarray(0, cut), codec, size), `${codec} cut at ${cut}`).toThrow(
          BlockCorruptError,
        );
      }
    }
  });

  it('garbage, the wrong codec, and a zlib header on raw deflate', () => {
    const garbage = randomBytes(100);
    expect(() => decodeBlock(garbage, 'zstd', size)).toThrow(BlockCorruptError);
    expect(() => decodeBlock(garbage, 'zlib', size)).toThrow(BlockCorruptError);
    expect(() => decodeBlock(zs, 'zlib', size)).toThrow(BlockCorruptError);
    expect(() => decodeBlock(zl, 'zstd', size)).toThrow(BlockCorruptError);
    expect(() => decodeBlock(deflateRawSync(data), 'zlib', size)).toThrow(BlockCorruptError);
  });

  it('a flipped byte inside a frame', () => {
    for (const [codec, bytes] of [
      ['zstd', zs],
      ['zlib', zl],
    ] as const) {
      let caught = 0;
      for (let pos = 0; pos < bytes.length; pos += 7) {
        const bad = Buffer.from(bytes);
        bad[pos] = (bad[pos] as number) ^ 0x55;
        try {
          const out = decodeBlock(bad, codec, size);
          expect(out.length).toBe(size); // a flip the codec cannot see still yields exactly `length` bytes
        } catch (e) {
          expect(e).toBeInstanceOf(BlockCorruptError);
          caught++;
        }
      }
      expect(caught, codec).toBeGreaterThan(0);
    }
  });

  it('frames that decode to the wrong length', () => {
    const short = encodeBlock(textish(4096), { codec: 'zstd', level: 3 }).bytes;
    expect(() => decodeBlock(short, 'zstd', size)).toThrow(/declares 4096 bytes, expected 8192/);
    const shortZlib = encodeBlock(textish(4096), { codec: 'zlib', level: 6 }).bytes;
    expect(() => decodeBlock(shortZlib, 'zlib', size)).toThrow(/zlib gave 4096 bytes, expected 8192/);
  });

  it('a decoder failure does not poison the next decode', () => {
    expect(() => decodeBlock(zs.subarray(0, zs.length - 1), 'zstd', size)).toThrow(BlockCorruptError);
    expect(Buffer.from(decodeBlock(zs, 'zstd', size)).equals(Buffer.from(data))).toBe(true);
  });
});

describe('decodeBlock is bounded by length (decompression bombs)', () => {
  const BOMB = 64 * 1024 * 1024;
  const zeros = Buffer.alloc(BOMB);
  const cctx = new zstd.CCtx();
  const dst = Buffer.alloc(zstd.compressBound(BOMB));
  const zstdSized = Buffer.from(dst.subarray(0, cctx.compress(dst, zeros, 3)));
  cctx.setParameter(zstd.CParameter.contentSizeFlag, 0);
  cctx.setParameter(zstd.CParameter.compressionLevel, 3);
  const zstdUnsized = Buffer.from(dst.subarray(0, cctx.compress2(dst, zeros)));
  const zlibBomb = deflateSync(zeros, { level: 9 });

  it('builds small bombs', () => {
    expect(zstd.getFrameContentSize(zstdSized)).toBe(BOMB);
    expect(zstd.getFrameContentSize(zstdUnsized)).toBeNull();
    expect(zstdSized.length).toBeLessThan(4096);
    expect(zstdUnsized.length).toBeLessThan(4096);
    expect(zlibBomb.length).toBeLessThan(131072);
  });

  it('a zstd frame declaring 64 MiB, decoded as 4 KiB, is refused from its header', () => {
    const { ms, grew } = expectCorruptCheaply(() => decodeBlock(zstdSized, 'zstd', 4096));
    expect(grew).toBeLessThan(8 * 1024 * 1024);
    expect(ms).toBeLessThan(100);
  });

  it('a zstd frame of unknown size is decoded into a 4 KiB buffer and fails when it overflows', () => {
    const { ms, grew } = expectCorruptCheaply(() => decodeBlock(zstdUnsized, 'zstd', 4096));
    expect(grew).toBeLessThan(8 * 1024 * 1024);
    expect(ms).toBeLessThan(100);
  });

  it('a zlib stream of 64 MiB, decoded as 128 KiB, stops at 128 KiB', () => {
    const { ms, grew } = expectCorruptCheaply(() => decodeBlock(zlibBomb, 'zlib', 131072));
    expect(grew).toBeLessThan(8 * 1024 * 1024);
    expect(ms).toBeLessThan(100);
  });

  it('a zlib bomb bigger than the block is refused by its size alone', () => {
    const { ms } = expectCorruptCheaply(() => decodeBlock(zlibBomb, 'zlib', 4096));
    expect(ms).toBeLessThan(50);
  });
});

describe('sniffCodec / classifyStored', () => {
  const data = textish(8192);
  const zs = encodeBlock(data, { codec: 'zstd', level: 3 }).bytes;
  const zl = encodeBlock(data, { codec: 'zlib', level: 6 }).bytes;

  it('calls a block raw when its stored size equals its length, whatever its bytes', () => {
    expect(sniffCodec(data, 8192)).toBe('none');
    expect(sniffCodec(new Uint8Array(8192), 8192)).toBe('none');
    const zstdLooking = new Uint8Array(8192);
    zstdLooking.set(zs.subarray(0, 4));
    expect(sniffCodec(zstdLooking, 8192)).toBe('none');
  });

  it('tells zstd from zlib by magic', () => {
    expect(sniffCodec(zs, 8192)).toBe('zstd');
    expect(sniffCodec(zl, 8192)).toBe('zlib');
    for (const level of [1, 9]) expect(sniffCodec(deflateSync(data, { level }), 8192)).toBe('zlib');
  });

  it('refuses longer-than-block, too short and unrecognised bytes', () => {
    expect(sniffCodec(new Uint8Array(8193), 8192)).toBeUndefined();
    expect(sniffCodec(new Uint8Array(1), 8192)).toBeUndefined();
    expect(sniffCodec(new Uint8Array(0), 8192)).toBeUndefined();
    expect(sniffCodec(Buffer.from('hello world'), 8192)).toBeUndefined();
    expect(sniffCodec(deflateRawSync(data), 8192)).toBeUndefined();
    expect(sniffCodec(Buffer.from([0x78, 0x9d, 0, 0]), 8192)).toBeUndefined(); // zlib CMF with a bad check
  });

  it('looks only at the view of a larger buffer', () => {
    const big = Buffer.concat([Buffer.from('junk'), zs]);
    expect(sniffCodec(big.subarray(4), 8192)).toBe('zstd');
  });

  it('classifyStored agrees with sniffCodec from the first 4 bytes and the size', () => {
    expect(classifyStored(zs.subarray(0, 4), zs.length, 8192)).toBe('zstd');
    expect(classifyStored(zl.subarray(0, 4), zl.length, 8192)).toBe('zlib');
    expect(classifyStored(data.subarray(0, 4), 8192, 8192)).toBe('none');
    expect(classifyStored(zs.subarray(0, 4), 8193, 8192)).toBeUndefined();
    expect(classifyStored(new Uint8Array(0), 100, 8192)).toBeUndefined();
    expect(classifyStored(zl.subarray(0, 2), zl.length, 8192)).toBe('zlib');
  });
});
