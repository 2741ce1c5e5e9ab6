import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blockId, type HashAlgorithm, isZeroBlock } from '../src/block-id.js';
import { encodeBlock } from '../src/codecs.js';
import { IndexFormatError, InvalidArgumentError } from '../src/errors.js';
import {
  type DecodedIndex,
  decodeIndex,
  encodeIndex,
  FORMAT_VERSION,
  IndexDecoder,
  type IndexEntry,
  type IndexHeader,
  MAGIC,
  MAX_BLOCKS,
  MAX_LINE_LENGTH,
  signIndex,
  verifyIndexSignatures,
} from '../src/image-index.js';
import {
  generateSigningKey,
  keyIdOf,
  parsePrivateKey,
  parsePublicKey,
  rawPublicKey,
  verifyBytes,
} from '../src/signature.js';

type StoredEntry = Extract<IndexEntry, { id: string }>;

const PREVIOUS = `sha256:${'ab'.repeat(32)}`;

function header(hash: HashAlgorithm = 'sha1', extra: Partial<IndexHeader> = {}): IndexHeader {
  return {
    version: 1,
    name: 'debian',
    size: 3 * 4096 + 100,
    blockSize: 4096,
    hash,
    codec: 'zstd:3',
    created: '2026-11-27T09:00:00Z',
    ...extra,
  };
}

function pattern(size: number, seed: number): Uint8Array {
  const d = new Uint8Array(size);
  for (let i = 0; i < size; i++) d[i] = ((i >> 3) * seed) & 0x0f;
  return d;
}

/** Four blocks of a 12388-byte image: zstd, zero, zlib, and a raw 100-byte short last block. */
function entries(hash: HashAlgorithm = 'sha1'): IndexEntry[] {
  const b0 = pattern(4096, 3);
  const b2 = pattern(4096, 5);
  const b3 = new Uint8Array(100).map((_, i) => (i * 151) & 0xff);
  const z0 = encodeBlock(b0, { codec: 'zstd', level: 3 });
  const z2 = encodeBlock(b2, { codec: 'zlib', level: 6 });
  expect([z0.codec, z2.codec]).toEqual(['zstd', 'zlib']);
  return [
    { id: blockId(b0, hash), codec: 'zstd', storedSize: z0.bytes.length },
    { zero: true },
    { id: blockId(b2, hash), codec: 'zlib', storedSize: z2.bytes.length },
    { id: blockId(b3, hash), codec: 'none', storedSize: 100 },
  ];
}

/** The unsigned index used by the error tests. Lines: 1 magic … 8 previous, 9 blocks, 10–13 entries, 14 end. */
const BASE = Buffer.from(encodeIndex(header('sha1', { previous: PREVIOUS }), entries())).toString('latin1');
const BASE_LINES = BASE.slice(0, -1).split('\n');

function text(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}

/** BASE with line `n` (1-based) replaced by `replacement`, or removed when it is null. */
function edit(n: number, replacement: string | null, lines = BASE_LINES): string {
  const out = [...lines];
  if (replacement === null) out.splice(n - 1, 1);
  else out[n - 1] = replacement;
  return text(out);
}

/** Re-seals a text body whose last line is the end line, so only the intended fault remains. */
function reseal(lines: readonly string[]): string {
  const body = text(lines.slice(0, -1));
  return `${body}end sha256:${createHash('sha256').update(body, 'latin1').digest('hex')}\n`;
}

function errorOf(input: string | Uint8Array): IndexFormatError {
  try {
    decodeIndex(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  } catch (e) {
    if (e instanceof IndexFormatError) return e;
    throw e;
  }
  throw new Error('expected IndexFormatError, but the index decoded');
}

function expectError(input: string | Uint8Array, line: number | undefined, field: string | undefined, reason?: RegExp) {
  const e = errorOf(input);
  expect({ line: e.line, field: e.field }, e.message).toEqual({ line, field });
  if (reason) expect(e.reason).toMatch(reason);
  expect(e.code).toBe('ERR_INDEX_FORMAT');
  return e;
}

function sameDecoded(a: DecodedIndex, b: DecodedIndex): void {
  expect(a.digest).toBe(b.digest);
  expect(a.index.header).toEqual(b.index.header);
  expect([...a.index.entries()]).toEqual([...b.index.entries()]);
  expect(a.signatures).toEqual(b.signatures);
  expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
}

function decodeInChunks(bytes: Uint8Array, sizes: (i: number) => number): DecodedIndex {
  const d = new IndexDecoder();
  for (let off = 0, i = 0; off < bytes.length; i++) {
    const n = Math.max(1, sizes(i));
    d.push(bytes.subarray(off, off + n));
    off += n;
  }
  return d.finish();
}

/** Small deterministic PRNG (mulberry32), so chunk splits are random but reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('encodeIndex', () => {
  it('writes the documented text form', () => {
    const [b0, , b2, b3] = entries() as [StoredEntry, IndexEntry, StoredEntry, StoredEntry];
    const bytes = encodeIndex(header('sha1', { previous: PREVIOUS }), entries());
    const lines = Buffer.from(bytes).toString('latin1').split('\n');
    const body = `${lines.slice(0, 13).join('\n')}\n`;
    expect(lines).toEqual([
      'thfc-index 1',
      'name debian',
      'size 12388',
      'block-size 4096',
      'hash sha1',
      'codec zstd:3',
      'created 2026-11-27T09:00:00Z',
      `previous ${PREVIOUS}`,
      'blocks 4',
      `${b0.id} zstd ${b0.storedSize}`,
      'zero',
      `${b2.id} zlib ${b2.storedSize}`,
      `${b3.id} none 100`,
      `end sha256:${createHash('sha256').update(body).digest('hex')}`,
      '',
    ]);
    expect(MAGIC).toBe('thfc-index');
    expect(FORMAT_VERSION).toBe(1);
  });

  it('is deterministic: the same inputs give identical bytes', () => {
    const a = encodeIndex(header('sha256', { previous: PREVIOUS }), entries('sha256'));
    const b = encodeIndex(header('sha256', { previous: PREVIOUS }), entries('sha256'));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const c = encodeIndex(header('sha256', { previous: PREVIOUS, created: '2026-11-27T09:00:01Z' }), entries('sha256'));
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it('writes the codec in its canonical spelling', () => {
    const bytes = encodeIndex(header('sha1', { codec: 'zlib' }), entries());
    expect(Buffer.from(bytes).toString().split('\n')[5]).toBe('codec zlib:6');
  });

  it('accepts entries from any iterable, such as a generator', () => {
    function* gen() {
      yield* entries();
    }
    expect(Buffer.from(encodeIndex(header(), gen())).equals(Buffer.from(encodeIndex(header(), entries())))).toBe(true);
  });

  it('rejects bad headers with InvalidArgumentError', () => {
    const bad: Partial<IndexHeader>[] = [
      { version: 2 },
      { name: '../x' },
      { name: 'a.idx' },
      { size: 0 },
      { size: 1.5 },
      { size: 2 ** 53 },
      { blockSize: 5000 },
      { codec: 'gzip' },
      { created: '2026-11-27 09:00:00' },
      { created: '2026-11-27T09:00:00.123Z' },
      { previous: 'sha256:abc' },
    ];
    for (const b of bad)
      expect(() => encodeIndex(header('sha1', b), entries()), JSON.stringify(b)).toThrow(InvalidArgumentError);
  });

  it('rejects the wrong number of entries and entries that break the size rules', () => {
    const e = entries();
    const [b0, zero, b2, b3] = e as [StoredEntry, IndexEntry, StoredEntry, StoredEntry];
    const cases: [IndexEntry[], RegExp][] = [
      [[b0, zero, b2], /3 entries for 4 blocks/],
      [[...e, zero], /more entries than the 4 blocks/],
      [[b0, zero, b2, { ...b3, storedSize: 99 }], /entry 3: a raw block must be stored as 100 bytes, not 99/],
      [[b0, zero, b2, { ...b3, codec: 'zstd', storedSize: 100 }], /entry 3: compressed size 100 is not below/],
      [[{ ...b3, codec: 'none', storedSize: 100 }, zero, b2, b3], /entry 0: a raw block must be stored as 4096/],
      [[b0, zero, b2, { ...b3, id: b3.id.toUpperCase() }], /entry 3: .* is not a lowercase sha1 hex digest/],
      [[b0, zero, b2, { ...b3, id: 'ab'.repeat(32) }], /not a lowercase sha1/],
      [[b0, zero, b2, { ...b3, codec: 'lz4' as 'none' }], /unknown codec "lz4"/],
      [[b0, zero, b2, { ...b3, codec: 'zlib', storedSize: 0 }], /bad stored size 0/],
    ];
    for (const [list, message] of cases) expect(() => encodeIndex(header(), list)).toThrow(message);
  });
});

describe('decodeIndex', () => {
  it.each(['sha1', 'sha256'] as const)(
    'round-trips a %s index with zero entries, a short last block and previous',
    (hash) => {
      const h = header(hash, { previous: PREVIOUS });
      const e = entries(hash);
      const bytes = encodeIndex(h, e);
      const d = decodeIndex(bytes);
      expect(d.index.header).toEqual(h);
      expect(d.index.blockCount).toBe(4);
      expect([...d.index.entries()]).toEqual(e);
      expect(d.signatures).toEqual([]);
      expect(Buffer.from(d.bytes).equals(Buffer.from(bytes))).toBe(true);
      const body = Buffer.from(bytes).subarray(0, Buffer.from(bytes).lastIndexOf('end '));
      expect(d.digest).toBe(`sha256:${createHash('sha256').update(body).digest('hex')}`);
      expect([0, 1, 2, 3].map((i) => d.index.isZero(i))).toEqual([false, true, false, false]);
      expect([0, 1, 2, 3].map((i) => d.index.blockLength(i))).toEqual([4096, 4096, 4096, 100]);
      expect(d.index.ref(1)).toBeUndefined();
      expect(d.index.ref(3)).toEqual({ ...e[3], size: 100 });
      expect(d.index.ref(0)).toEqual({ ...e[0], size: 4096 });
      // Re-encoding the decoded index gives the same bytes.
      expect(Buffer.from(encodeIndex(d.index.header, d.index.entries())).equals(Buffer.from(bytes))).toBe(true);
    },
  );

  it('round-trips without previous, which then decodes as undefined', () => {
    const d = decodeIndex(encodeIndex(header(), entries()));
    expect(d.index.header.previous).toBeUndefined();
    expect(d.index.header).toEqual(header());
  });

  it('round-trips an all-zero image and a one-byte image', () => {
    const allZero = decodeIndex(encodeIndex(header('sha1', { size: 8192 }), [{ zero: true }, { zero: true }]));
    expect(allZero.index.counts()).toEqual({ blocks: 2, zero: 2, unique: 0, storedBytes: 0 });
    const one = new Uint8Array([42]);
    const tiny = decodeIndex(
      encodeIndex(header('sha256', { size: 1, blockSize: 4194304 }), [
        { id: blockId(one, 'sha256'), codec: 'none', storedSize: 1 },
      ]),
    );
    expect(tiny.index.ref(0)).toEqual({ id: blockId(one, 'sha256'), codec: 'none', storedSize: 1, size: 1 });
  });

  it('counts duplicates once and keeps the first ref of each block', () => {
    const [b0, zero] = entries() as [IndexEntry, IndexEntry];
    const d = decodeIndex(encodeIndex(header('sha1', { size: 4 * 4096 }), [b0, zero, b0, zero]));
    const unique = d.index.uniqueRefs();
    expect([...unique.keys()]).toEqual([(b0 as { id: string }).id]);
    expect(d.index.counts()).toEqual({
      blocks: 4,
      zero: 2,
      unique: 1,
      storedBytes: (b0 as { storedSize: number }).storedSize,
    });
  });

  it('finds the first block of an id and walks the distinct blocks in image order', () => {
    const [b0, zero, b2] = entries() as [StoredEntry, IndexEntry, StoredEntry];
    const d = decodeIndex(encodeIndex(header('sha1', { size: 5 * 4096 }), [zero, b2, b0, b2, b0]));
    expect([...d.index.uniqueBlocks()]).toEqual([1, 2]);
    expect([0, 1, 2, 3, 4].map((i) => d.index.isFirst(i))).toEqual([false, true, true, false, false]);
    expect(d.index.findBlock(b0.id)).toBe(2);
    expect(d.index.findBlock(b2.id)).toBe(1);
    expect(d.index.findBlock('00'.repeat(20))).toBe(-1);
    expect(d.index.findBlock('not hex')).toBe(-1);
    expect(d.index.findBlock(`${b0.id}00`)).toBe(-1);
    expect(d.index.uniqueCount()).toBe(2);
  });

  it('keeps the bytes decodeIndex was given rather than a copy', () => {
    const bytes = encodeIndex(header(), entries());
    const kept = decodeIndex(bytes).bytes;
    expect([kept.buffer, kept.byteOffset, kept.byteLength]).toEqual([bytes.buffer, bytes.byteOffset, bytes.byteLength]);
    expect(kept.buffer).toBe(bytes.buffer);
  });

  it('decodes 200,000 entries into typed arrays, each entry line a few bytes of them', () => {
    const n = 200_000;
    const list: IndexEntry[] = [];
    for (let i = 0; i < n; i++) {
      const id = createHash('sha1')
        .update(String(i % 150_000))
        .digest('hex');
      list.push(i % 10 === 0 ? { zero: true } : { id, codec: i % 3 ? 'zstd' : 'zlib', storedSize: 1 + (i % 4000) });
    }
    const bytes = encodeIndex(header('sha1', { size: n * 4096 }), list);
    const d = decodeIndex(bytes);
    for (let i = 0; i < n; i += 997) expect(d.index.entry(i)).toEqual(list[i]);
    expect(d.index.entry(n - 1)).toEqual(list[n - 1]);
    // The entries' arrays: 20 id bytes + 1 codec byte + 4 size bytes per block, and nothing per line beside them.
    const arrays = Object.values(d.index).filter((v): v is Uint8Array | Uint32Array => ArrayBuffer.isView(v));
    expect(arrays.reduce((sum, a) => sum + a.byteLength, 0)).toBe(25 * n);
    expect(d.index.counts().unique).toBe(new Set(list.flatMap((e) => (e.zero ? [] : [e.id]))).size);
  });

  it('throws RangeError for a block outside the image', () => {
    const d = decodeIndex(encodeIndex(header(), entries()));
    expect(() => d.index.ref(4)).toThrow(RangeError);
    expect(() => d.index.ref(-1)).toThrow(RangeError);
  });

  it('decodes a large index whose entries outgrow the initial capacity', () => {
    const n = 5000;
    const list: IndexEntry[] = [];
    for (let i = 0; i < n; i++) {
      list.push(
        i % 3 === 0 ? { zero: true } : { id: blockId(pattern(8, i), 'sha1'), codec: 'zstd', storedSize: 1 + i },
      );
    }
    const d = decodeIndex(encodeIndex(header('sha1', { size: n * 65536, blockSize: 65536 }), list));
    expect([...d.index.entries()]).toEqual(list);
  });
});

describe('IndexDecoder (streaming)', () => {
  const k1 = generateSigningKey();
  const signed = signIndex(
    encodeIndex(header('sha256', { previous: PREVIOUS }), entries('sha256')),
    parsePrivateKey(k1.privateKeyPem),
    parsePublicKey(k1.publicKeyPem),
  );
  const whole = decodeIndex(signed);

  it('gives the same result when fed one byte at a time', () => {
    sameDecoded(
      decodeInChunks(signed, () => 1),
      whole,
    );
  });

  it('gives the same result for random chunk splits', () => {
    const rnd = prng(42);
    for (let run = 0; run < 50; run++) {
      const max = 1 + Math.floor(rnd() * 300);
      sameDecoded(
        decodeInChunks(signed, () => 1 + Math.floor(rnd() * max)),
        whole,
      );
    }
  });

  it('copies what it keeps, so callers may reuse their buffer', () => {
    const d = new IndexDecoder();
    const buf = Buffer.alloc(7);
    for (let off = 0; off < signed.length; off += 7) {
      const n = Buffer.from(signed).copy(buf, 0, off, off + 7);
      d.push(buf.subarray(0, n));
      buf.fill(0x21);
    }
    sameDecoded(d.finish(), whole);
  });

  it('reports the same error, line and field in chunks as whole', () => {
    const bad = [edit(3, 'size 0'), edit(2, `name ${'x'.repeat(600)}`), edit(11, 'zer0'), `${BASE}junk`];
    const rnd = prng(7);
    for (const input of bad) {
      const expected = errorOf(input);
      for (const sizes of [() => 1, () => 1 + Math.floor(rnd() * 40)]) {
        let got: unknown;
        try {
          decodeInChunks(Buffer.from(input, 'latin1'), sizes);
        } catch (e) {
          got = e;
        }
        expect(got).toBeInstanceOf(IndexFormatError);
        expect((got as IndexFormatError).message).toBe(expected.message);
      }
    }
  });
});

describe('decoder strictness: each error names its line and field', () => {
  it('checks that the base index is valid', () => {
    expect(BASE_LINES).toHaveLength(14);
    expect(decodeIndex(Buffer.from(BASE)).index.blockCount).toBe(4);
    expect(decodeIndex(Buffer.from(reseal(BASE_LINES))).digest).toBe(decodeIndex(Buffer.from(BASE)).digest);
  });

  it('magic and version (line 1)', () => {
    expectError(edit(1, 'thfc-indx 1'), 1, 'magic', /not a thfc index/);
    expectError(edit(1, 'THFC-INDEX 1'), 1, 'magic');
    expectError(edit(1, '#!thfc-index 1'), 1, 'magic');
    expectError('GIF89a\n', 1, 'magic');
    // A disk image given as an index: said at once, whatever its first bytes.
    expectError(Buffer.from([0xeb, 0x63, 0x90, 0, 0, 0]), 1, 'magic', /not a thfc index.*a disk image/);
    expectError(edit(1, 'thfc-index 2'), 1, 'version', /format version 2 is not supported/);
    expectError(edit(1, 'thfc-index 0'), 1, 'version', /not supported/);
    expectError(edit(1, 'thfc-index 01'), 1, 'version', /bad version field/);
    expectError(edit(1, 'thfc-index'), 1, 'version');
    expectError(edit(1, 'thfc-index  1'), 1, 'version');
    expectError(edit(1, 'thfc-index 1 extra'), 1, 'version');
    expectError(edit(1, 'thfc-index v1'), 1, 'version');
  });

  it('header keys must come in order, each once, and be known', () => {
    const swapped = [...BASE_LINES];
    [swapped[1], swapped[2]] = [swapped[2] as string, swapped[1] as string];
    expectError(text(swapped), 2, 'size', /header key "size" out of order \(expected "name"\)/);
    expectError(edit(3, null), 3, 'block-size', /out of order \(expected "size"\)/);
    expectError(edit(3, 'name again'), 3, 'name', /out of order/);
    expectError(edit(5, 'color red'), 5, 'color', /unknown header key "color"/);
    expectError(edit(5, 'Hash sha1'), 5, 'Hash', /unknown header key/);
    expectError(edit(9, 'blocks: 4'), 9, 'blocks:', /unknown/);
    // previous is optional, but only between created and blocks.
    const early = [...BASE_LINES];
    early.splice(7, 1);
    early.splice(2, 0, `previous ${PREVIOUS}`);
    expectError(text(early), 3, 'previous', /out of order \(expected "size"\)/);
    expectError(edit(9, `previous ${PREVIOUS}`), 9, 'previous', /out of order \(expected "blocks"\)/);
    expectError(edit(2, ''), 2, '', /unknown header key ""/);
  });

  it('header values are one non-empty word', () => {
    expectError(edit(2, 'name'), 2, 'name', /one non-empty word/);
    expectError(edit(2, 'name '), 2, 'name', /one non-empty word/);
    expectError(edit(2, 'name  debian'), 2, 'name', /one non-empty word/);
    expectError(edit(2, 'name debian 12'), 2, 'name', /one non-empty word/);
    expectError(edit(7, 'created 2026-11-27 09:00:00'), 7, 'created', /one non-empty word/);
  });

  it('name', () => {
    expectError(edit(2, 'name .debian'), 2, 'name', /bad image name/);
    expectError(edit(2, 'name debian.idx'), 2, 'name');
    expectError(edit(2, 'name a/b'), 2, 'name');
  });

  it('size', () => {
    for (const v of ['0', '-1', '01', '1e6', '12388.0', '0x3064', '99999999999999999', '9007199254740993']) {
      expectError(edit(3, `size ${v}`), 3, 'size');
    }
    expectError(edit(3, 'size 0'), 3, 'size', /bad image size 0/);
    expectError(edit(3, 'size 9007199254740993'), 3, 'size', /too large/);
  });

  it('block size', () => {
    for (const v of ['0', '4095', '4097', '2048', '8388608', '65536k', '04096']) {
      expectError(edit(4, `block-size ${v}`), 4, 'block-size');
    }
    expectError(edit(4, 'block-size 12288'), 4, 'block-size', /not a power of two from 4096 to 4194304/);
  });

  it('hash', () => {
    expectError(edit(5, 'hash md5'), 5, 'hash', /unknown hash "md5"/);
    expectError(edit(5, 'hash SHA1'), 5, 'hash');
  });

  it('codec: known, in range, and spelled canonically', () => {
    expectError(edit(6, 'codec gzip'), 6, 'codec', /bad codec "gzip"/);
    expectError(edit(6, 'codec zstd:20'), 6, 'codec', /bad level 20/);
    expectError(edit(6, 'codec zstd'), 6, 'codec', /"zstd" must be written "zstd:3"/);
    expectError(edit(6, 'codec zstd:03'), 6, 'codec', /must be written "zstd:3"/);
    expectError(edit(6, 'codec none:0'), 6, 'codec', /must be written "none"/);
    // Informative only: any valid codec decodes, whatever the entries use.
    expect(
      decodeIndex(Buffer.from(reseal(BASE_LINES.map((l, i) => (i === 5 ? 'codec none' : l))))).index.header.codec,
    ).toBe('none');
  });

  it('created', () => {
    for (const v of [
      '2026-13-01T00:00:00Z',
      '2026-00-01T00:00:00Z',
      '2026-11-32T00:00:00Z',
      '2026-11-27T24:00:00Z',
      '2026-11-27T09:60:00Z',
      '2026-11-27T09:00:00',
      '2026-11-27T09:00:00+01:00',
      '2026-11-27T09:00:00.5Z',
      '2026-11-27',
      '26-11-27T09:00:00Z',
    ]) {
      expectError(edit(7, `created ${v}`), 7, 'created', /not a UTC time/);
    }
  });

  it('previous', () => {
    expectError(edit(8, 'previous sha1:abc'), 8, 'previous', /not sha256:<64 hex>/);
    expectError(edit(8, `previous sha256:${'AB'.repeat(32)}`), 8, 'previous');
    expectError(edit(8, `previous ${'ab'.repeat(32)}`), 8, 'previous');
  });

  it('blocks must equal the block count of size and block-size', () => {
    expectError(edit(9, 'blocks 5'), 9, 'blocks', /5 blocks, but a 12388-byte image of 4096-byte blocks has 4/);
    expectError(edit(9, 'blocks 3'), 9, 'blocks');
    expectError(edit(9, 'blocks 0'), 9, 'blocks');
    expectError(edit(9, 'blocks 04'), 9, 'blocks', /not a decimal number/);
  });

  it('blocks may not exceed MAX_BLOCKS', () => {
    const size = 2 ** 31 * 4096; // 2^31 blocks of 4 KiB
    const lines = [...BASE_LINES.slice(0, 9)];
    lines[2] = `size ${size}`;
    lines[8] = `blocks ${2 ** 31}`;
    expectError(text(lines), 9, 'blocks', new RegExp(`more than ${MAX_BLOCKS}`));
  });

  it('entries: shape', () => {
    expectError(edit(10, 'zero zero'), 10, 'entry', /expected "<id> <codec> <stored-size>" or "zero"/);
    expectError(edit(11, 'ZERO'), 11, 'entry');
    expectError(edit(11, ''), 11, 'entry');
    expectError(edit(13, `${BASE_LINES[12]} extra`), 13, 'entry');
    expectError(edit(13, (BASE_LINES[12] as string).replace(' ', '  ')), 13, 'entry');
  });

  it('entries: id', () => {
    const [id, codec, size] = (BASE_LINES[9] as string).split(' ') as [string, string, string];
    expectError(edit(10, `${id.toUpperCase()} ${codec} ${size}`), 10, 'id', /not a lowercase sha1 hex digest/);
    expectError(edit(10, `${id.slice(1)} ${codec} ${size}`), 10, 'id');
    expectError(edit(10, `${id}00 ${codec} ${size}`), 10, 'id');
    expectError(edit(10, `${'ab'.repeat(32)} ${codec} ${size}`), 10, 'id'); // a sha256 name in a sha1 index
    expectError(edit(10, `${id.slice(0, 39)}g ${codec} ${size}`), 10, 'id');
  });

  it('entries: codec', () => {
    const [id, , size] = (BASE_LINES[9] as string).split(' ') as [string, string, string];
    expectError(edit(10, `${id} lz4 ${size}`), 10, 'codec', /unknown codec "lz4"/);
    expectError(edit(10, `${id} zero ${size}`), 10, 'codec');
    expectError(edit(10, `${id} zstd:3 ${size}`), 10, 'codec');
    expectError(edit(10, `${id} ZSTD ${size}`), 10, 'codec');
  });

  it('entries: stored size', () => {
    const [id0] = (BASE_LINES[9] as string).split(' ') as [string];
    const [id3] = (BASE_LINES[12] as string).split(' ') as [string];
    for (const v of ['x', '-1', '01', '1.0', '']) {
      expectError(edit(10, `${id0} zstd ${v}`), 10, 'stored-size', /not a decimal number/);
    }
    expectError(edit(10, `${id0} zstd 0`), 10, 'stored-size', /bad stored size 0/);
    // Only raw blocks have stored size == length, and they must have exactly that.
    expectError(edit(13, `${id3} none 99`), 13, 'stored-size', /raw block must be stored as 100 bytes, not 99/);
    expectError(edit(13, `${id3} none 4096`), 13, 'stored-size', /raw block must be stored as 100 bytes/);
    expectError(edit(10, `${id0} none 100`), 10, 'stored-size', /as 4096 bytes, not 100/);
    expectError(
      edit(13, `${id3} zstd 100`),
      13,
      'stored-size',
      /compressed size 100 is not below the block length 100/,
    );
    expectError(edit(10, `${id0} zlib 4096`), 10, 'stored-size', /compressed size 4096/);
    expectError(edit(10, `${id0} zstd 5000`), 10, 'stored-size');
    expect(decodeIndex(Buffer.from(reseal(BASE_LINES.map((l, i) => (i === 9 ? `${id0} zstd 4095` : l)))))).toBeTruthy();
  });

  it('an end line before all entries', () => {
    expectError(edit(12, BASE_LINES[13] as string), 12, 'blocks', /end line after 2 of 4 block entries/);
    expectError(edit(10, 'end'), 10, 'blocks', /end line after 0 of 4/);
  });

  it('more entries than declared', () => {
    const lines = [...BASE_LINES];
    lines.splice(13, 0, 'zero');
    expectError(reseal(lines), 14, 'end', /more than the 4 block entries the header declares/);
  });

  it('a malformed end line', () => {
    expectError(edit(14, 'end'), 14, 'end', /end line must be "end sha256:<64 hex>"/);
    expectError(edit(14, (BASE_LINES[13] as string).toUpperCase().replace('END SHA256', 'end sha256')), 14, 'end');
    expectError(edit(14, (BASE_LINES[13] as string).replace('sha256:', 'sha1:')), 14, 'end');
    expectError(edit(14, `${BASE_LINES[13]} `), 14, 'end');
    expectError(edit(14, (BASE_LINES[13] as string).slice(0, -1)), 14, 'end');
  });

  it('a digest that does not match: any changed byte in the header or entries', () => {
    const bytes = Buffer.from(BASE, 'latin1');
    const endAt = bytes.lastIndexOf('end ');
    let checked = 0;
    for (let pos = 0; pos < endAt; pos++) {
      const c = bytes[pos] as number;
      // Swap a hex digit for another hex digit, or a digit for another digit, so the line stays well formed.
      const swap = c >= 0x30 && c <= 0x38 ? c + 1 : c === 0x39 ? 0x30 : c >= 0x61 && c <= 0x65 ? c + 1 : undefined;
      if (swap === undefined) continue;
      const bad = Buffer.from(bytes);
      bad[pos] = swap;
      const e = errorOf(bad);
      if (e.field === 'end') {
        expect(e.line).toBe(14);
        expect(e.reason).toMatch(/digest does not match/);
        checked++;
      }
    }
    // Every id digit, for one, keeps its line valid and so must be caught by the digest.
    expect(checked).toBeGreaterThan(3 * 40);
  });

  it('a missing end line, and truncation anywhere, all throw', () => {
    expectError(text(BASE_LINES.slice(0, 13)), 14, 'end', /no end line/);
    expectError(text(BASE_LINES.slice(0, 12)), 13, undefined, /truncated: 3 of 4 block entries, no end line/);
    expectError(text(BASE_LINES.slice(0, 9)), 10, undefined, /truncated: 0 of 4/);
    expectError(text(BASE_LINES.slice(0, 5)), 6, undefined, /truncated in the header/);
    expectError('', 1, undefined, /truncated in the header/);
    const bytes = Buffer.from(BASE, 'latin1');
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => decodeIndex(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(IndexFormatError);
    }
  });

  it('the last line must end in a newline', () => {
    expectError(BASE.slice(0, -1), 14, undefined, /last line has no newline/);
  });

  it('lines after the end line must be signature lines', () => {
    expectError(`${BASE}zero\n`, 15, 'sig', /only signature lines may follow the end line/);
    expectError(`${BASE}\n`, 15, 'sig');
    expectError(`${BASE}${BASE_LINES[13]}\n`, 15, 'sig');
    expectError(`${BASE}# comment\n`, 15, 'sig');
    expectError(`${BASE}sig\n`, 15, 'sig', /expected "sig ed25519 <key-id> <public-key> <signature>"/);
  });

  it('lines longer than MAX_LINE_LENGTH, with or without a newline', () => {
    expect(MAX_LINE_LENGTH).toBe(512);
    const long = `name ${'x'.repeat(MAX_LINE_LENGTH)}`;
    expectError(edit(2, long), 2, undefined, /line longer than 512 bytes/);
    expectError(`${BASE_LINES[0]}\n${long}`, 2, undefined, /line longer than 512 bytes/);
    expectError('x'.repeat(100_000), 1, 'magic', /not a thfc index: it does not start with "thfc-index"/);
    expectError(`thfc-index ${'x'.repeat(100_000)}`, 1, undefined, /line longer/);
    expectError(`${BASE}${'s'.repeat(600)}\n`, 15, undefined, /line longer/);
    // 512 bytes exactly is long enough to be judged on its content.
    expectError(edit(2, `name ${'x'.repeat(MAX_LINE_LENGTH - 5)}`), 2, 'name', /bad image name/);
  });

  it('bytes outside printable ASCII, anywhere', () => {
    expectError(Buffer.from(edit(2, 'name débian'), 'utf8'), 2, undefined, /byte 0xc3 is not printable ASCII/);
    expectError(edit(2, 'name d\u00e9bian'), 2, undefined, /byte 0xe9/);
    expectError(edit(2, 'name\tdebian'), 2, undefined, /byte 0x09/);
    expectError(BASE.replaceAll('\n', '\r\n'), 1, undefined, /byte 0x0d/);
    expectError(edit(11, 'zero\u007f'), 11, undefined, /byte 0x7f/);
    expectError(edit(11, 'zero\u0000'), 11, undefined, /byte 0x00/);
    // A byte-order mark is not an index's first byte: the file is not an index.
    expectError(`\ufeff${BASE}`, 1, 'magic', /not a thfc index/);
    expectError(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(BASE)]), 1, 'magic', /not a thfc index/);
  });

  it('formats the message with line and field', () => {
    const e = errorOf(edit(3, 'size 0'));
    expect(e.message).toBe('index line 3 (size): bad image size 0');
    expect(e.name).toBe('IndexFormatError');
  });
});

describe('signatures', () => {
  const unsigned = encodeIndex(header('sha1', { previous: PREVIOUS }), entries());
  const a = generateSigningKey();
  const b = generateSigningKey();
  const privA = parsePrivateKey(a.privateKeyPem);
  const privB = parsePrivateKey(b.privateKeyPem);
  const pubA = parsePublicKey(a.publicKeyPem);
  const pubB = parsePublicKey(b.publicKeyPem);
  const once = signIndex(unsigned, privA, pubA);
  const twice = signIndex(once, privB, pubB);

  it('appends one sig line that covers every byte before it', () => {
    const added = Buffer.from(once).subarray(unsigned.length).toString('latin1');
    expect(added).toMatch(/^sig ed25519 [0-9a-f]{16} [A-Za-z0-9+/]{43}= [A-Za-z0-9+/]{86}==\n$/);
    expect(added.split(' ')[2]).toBe(a.keyId);
    expect(Buffer.from(Buffer.from(once).subarray(0, unsigned.length)).equals(Buffer.from(unsigned))).toBe(true);
    const d = decodeIndex(once);
    expect(d.signatures).toHaveLength(1);
    const [s] = d.signatures as [DecodedIndex['signatures'][number]];
    expect(s.algorithm).toBe('ed25519');
    expect(s.keyId).toBe(a.keyId);
    expect(Buffer.from(s.publicKey).equals(Buffer.from(pubA))).toBe(true);
    expect(s.signedLength).toBe(unsigned.length);
    expect(s.line).toBe(15);
    expect(verifyBytes(unsigned, s.signature, pubA)).toBe(true);
    expect(verifyIndexSignatures(d)).toEqual([{ keyId: a.keyId, publicKey: s.publicKey, valid: true }]);
  });

  it('leaves the digest, the identity of the index, unchanged', () => {
    expect(decodeIndex(twice).digest).toBe(decodeIndex(unsigned).digest);
  });

  it('rotation: a second signature covers the body and the first signature', () => {
    const d = decodeIndex(twice);
    expect(d.signatures.map((s) => [s.keyId, s.signedLength, s.line])).toEqual([
      [a.keyId, unsigned.length, 15],
      [b.keyId, once.length, 16],
    ]);
    expect(verifyIndexSignatures(d).map((v) => [v.keyId, v.valid])).toEqual([
      [a.keyId, true],
      [b.keyId, true],
    ]);
    expect(verifyBytes(once, (d.signatures[1] as { signature: Uint8Array }).signature, pubB)).toBe(true);
    expect(verifyBytes(unsigned, (d.signatures[1] as { signature: Uint8Array }).signature, pubB)).toBe(false);
  });

  it('a changed byte in the body fails decoding', () => {
    const bad = Buffer.from(twice);
    const at = bad.indexOf('created 2026') + 'created 202'.length;
    bad[at] = 0x37; // 2026 → 2027
    expectError(bad, 14, 'end', /digest does not match/);
  });

  it('a changed signature in the first line breaks both signatures', () => {
    const bad = Buffer.from(twice);
    const line1 = bad.indexOf('sig ed25519 ');
    const sigAt = bad.indexOf('==\n', line1) - 10;
    bad[sigAt] = bad[sigAt] === 0x41 ? 0x42 : 0x41;
    const d = decodeIndex(bad);
    expect(verifyIndexSignatures(d).map((v) => v.valid)).toEqual([false, false]);
  });

  it('a signature swapped between lines verifies for neither', () => {
    const text = Buffer.from(twice).toString('latin1').split('\n');
    const s1 = (text[14] as string).split(' ');
    const s2 = (text[15] as string).split(' ');
    [s1[4], s2[4]] = [s2[4] as string, s1[4] as string];
    const d = decodeIndex(Buffer.from([...text.slice(0, 14), s1.join(' '), s2.join(' '), ''].join('\n'), 'latin1'));
    expect(verifyIndexSignatures(d).map((v) => v.valid)).toEqual([false, false]);
  });

  it('a changed public key or key id in the first line fails decoding (key id mismatch)', () => {
    const lines = Buffer.from(twice).toString('latin1').split('\n');
    const parts = (lines[14] as string).split(' ');
    const otherPub = Buffer.from(pubB).toString('base64');
    const withPub = [...lines];
    withPub[14] = [parts[0], parts[1], parts[2], otherPub, parts[4]].join(' ');
    expectError(withPub.join('\n'), 15, 'key-id', /does not match the public key/);
    const withId = [...lines];
    withId[14] = [parts[0], parts[1], '0123456789abcdef', parts[3], parts[4]].join(' ');
    expectError(withId.join('\n'), 15, 'key-id');
  });

  it('a signature by another key than the one named fails verification, not decoding', () => {
    const d = decodeIndex(signIndex(unsigned, privB, pubA));
    expect(d.signatures[0]?.keyId).toBe(keyIdOf(pubA));
    expect(verifyIndexSignatures(d)[0]?.valid).toBe(false);
  });

  it('malformed sig lines name the bad field', () => {
    const good = (Buffer.from(once).toString('latin1').split('\n')[14] as string).split(' ');
    const line = (i: number, v: string) => {
      const p = [...good];
      p[i] = v;
      return `${BASE}${p.join(' ')}\n`;
    };
    expectError(line(1, 'rsa'), 15, 'algorithm', /unknown signature algorithm "rsa"/);
    expectError(line(3, (good[3] as string).slice(1)), 15, 'public-key', /44 base64 characters/);
    expectError(line(3, `${(good[3] as string).slice(0, 43)}A`), 15, 'public-key');
    expectError(line(4, (good[4] as string).slice(2)), 15, 'signature', /88 base64 characters/);
    expectError(line(4, `${(good[4] as string).slice(0, 87)}A`), 15, 'signature');
    expectError(`${BASE}${good.join(' ')} extra\n`, 15, 'sig', /expected "sig ed25519/);
    expectError(`${BASE}${good.join('  ')}\n`, 15, 'sig');
    // Signature lines may only follow the end line: one placed before it is a bad entry or header line.
    expectError(edit(14, good.join(' ')), 14, 'end', /more than the 4 block entries/);
  });
});

describe('docs/FORMAT.md', () => {
  it('shows, in its worked example, exactly what the code writes', () => {
    const block0 = Buffer.alloc(4096);
    for (let i = 0; i < 4096; i += 5) block0.write('thfc ', i, 'latin1');
    const block2 = Buffer.alloc(10000 - 8192);
    for (let i = 0; i < block2.length; i += 32) createHash('sha256').update(String(i)).digest().copy(block2, i);
    const list: IndexEntry[] = [block0, Buffer.alloc(4096), block2].map((d) => {
      if (isZeroBlock(d)) return { zero: true };
      const enc = encodeBlock(d, { codec: 'zstd', level: 3 });
      return { id: blockId(d, 'sha1'), codec: enc.codec, storedSize: enc.bytes.length };
    });
    const unsigned = encodeIndex(
      {
        version: 1,
        name: 'tiny',
        size: 10000,
        blockSize: 4096,
        hash: 'sha1',
        codec: 'zstd:3',
        created: '2026-11-27T09:00:00Z',
      },
      list,
    );
    // The example key: PKCS#8 DER of an Ed25519 seed of 32 bytes of 0x01.
    const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 1)]);
    const priv = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const signed = signIndex(unsigned, priv, rawPublicKey(priv));
    const doc = readFileSync(new URL('../../../docs/FORMAT.md', import.meta.url), 'utf8');
    const shown = /<!-- worked-example:[^>]*-->\n```\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(shown).toBe(Buffer.from(signed).toString('latin1'));
    expect(doc).toContain(`(${signed.length} bytes)`);
    expect(doc).toContain(
      String(priv.export({ type: 'pkcs8', format: 'pem' }))
        .trim()
        .split('\n')[1],
    );
    const d = decodeIndex(signed);
    expect(doc).toContain(d.digest.slice(0, 15));
    expect(verifyIndexSignatures(d).map((v) => v.valid)).toEqual([true]);
    expect(d.signatures[0]?.signedLength).toBe(292);
    expect(doc).toContain('bytes 0–291');
  });
});
