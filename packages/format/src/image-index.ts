import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { type HashAlgorithm, hashLength, isBlockId } from './block-id.js';
import { BlockIdTable } from './block-id-table.js';
import { isImageName } from './block-path.js';
import type { BlockRef } from './block-source.js';
import { type Codec, formatCodecSpec, isCodec, parseCodecSpec } from './codecs.js';
import { IndexFormatError, InvalidArgumentError, type ThfcError } from './errors.js';
import { blockCount, blockLength, isValidBlockSize, MAX_IMAGE_SIZE } from './geometry.js';
import { grownColumns } from './index-columns.js';
import { appendSignature, type InlineSignature, parseSignatureLine, verifyInlineSignatures } from './signature-line.js';

/**
 * Index (mapping table) format v1. docs/FORMAT.md is this module's prose twin;
 * change both together, and bump FORMAT_VERSION for anything a v1 decoder
 * would misread.
 *
 *   thfc-index 1
 *   name debian
 *   size 536870912
 *   block-size 262144
 *   hash sha1
 *   codec zstd:3
 *   created 2026-11-27T09:00:00Z
 *   previous sha256:<64 hex>          (optional)
 *   blocks 2048
 *   <id> <codec> <stored-size>        one line per block, in image order,
 *   zero                              or `zero` for an all-zero block
 *   end sha256:<64 hex>               digest of every byte before this line
 *   sig ed25519 <key-id> <public key, base64> <signature, base64>
 *                                     zero or more; each signs every byte before it
 */
export const FORMAT_VERSION = 1;
export const MAGIC = 'thfc-index';
/** No legal line is longer than ~170 bytes; the bound keeps garbage without newlines from growing a buffer. */
export const MAX_LINE_LENGTH = 512;
/** Typed-array lengths stay below 2^31; at 4 KiB blocks that is an 8 TiB image. */
export const MAX_BLOCKS = 2 ** 31 - 1;

export interface IndexHeader {
  readonly version: number;
  readonly name: string;
  readonly size: number;
  readonly blockSize: number;
  readonly hash: HashAlgorithm;
  /** Default codec and level as given to the packer, e.g. `zstd:3`. Informative: entries carry their own codec. */
  readonly codec: string;
  /** UTC, second resolution: `2026-11-27T09:00:00Z`. */
  readonly created: string;
  /** `sha256:<hex>` digest of the index this one replaces, when the publisher said so. */
  readonly previous?: string | undefined;
}

export type IndexEntry =
  | { readonly zero: true }
  | { readonly zero?: false; readonly id: string; readonly codec: Codec; readonly storedSize: number };

/** A signature line of an index (see signature-line.ts). */
export type IndexSignature = InlineSignature;

/** The codec byte of a zero block, which has no id. */
export const CODE_ZERO = 0;
const CODE_NONE = 1;
const CODEC_CODES: readonly (Codec | 'zero')[] = ['zero', 'none', 'zstd', 'zlib'];

/** The codec byte of `codec` in ImageIndex's arrays. */
export function codeOfCodec(codec: Codec): number {
  const code = CODEC_CODES.indexOf(codec);
  if (code <= CODE_ZERO) throw new InvalidArgumentError(`unknown codec "${String(codec).slice(0, 20)}"`);
  return code;
}

/** The value of each lowercase hex digit's byte, 255 for every other byte. */
const HEX_VALUE = (() => {
  const t = new Uint8Array(256).fill(255);
  for (let c = 0; c < 16; c++) t['0123456789abcdef'.charCodeAt(c)] = c;
  return t;
})();

/** Decodes `length` bytes of lowercase hex at buf[at] into out[to]; false at the first other byte. */
function hexInto(buf: Uint8Array, at: number, out: Uint8Array, to: number, length: number): boolean {
  for (let k = 0; k < length; k++) {
    const hi = HEX_VALUE[buf[at + 2 * k] as number] as number;
    const lo = HEX_VALUE[buf[at + 2 * k + 1] as number] as number;
    if ((hi | lo) === 255) return false;
    out[to + k] = (hi << 4) | lo;
  }
  return true;
}

/** The code of the four-letter codec name at buf[at], or CODE_ZERO if there is none. */
function codecCodeAt(buf: Uint8Array, at: number): number {
  const a = buf[at];
  const b = buf[at + 1];
  const c = buf[at + 2];
  const d = buf[at + 3];
  if (a === 0x7a && b === 0x73 && c === 0x74 && d === 0x64) return 2; // zstd
  if (a === 0x7a && b === 0x6c && c === 0x69 && d === 0x62) return 3; // zlib
  if (a === 0x6e && b === 0x6f && c === 0x6e && d === 0x65) return 1; // none
  return CODE_ZERO;
}

/** A decoded index held compactly: ids as raw digest bytes, codecs and sizes in typed arrays. */
export class ImageIndex {
  readonly blockCount: number;
  private readonly idLength: number;

  constructor(
    readonly header: IndexHeader,
    private readonly ids: Uint8Array,
    private readonly codes: Uint8Array,
    private readonly storedSizes: Uint32Array,
  ) {
    this.blockCount = codes.length;
    this.idLength = hashLength(header.hash);
  }

  isZero(i: number): boolean {
    return this.codes[i] === CODE_ZERO;
  }

  /** The ref of block `i`, or undefined for a zero block. */
  ref(i: number): BlockRef | undefined {
    const code = this.codes[i];
    if (code === undefined) throw new RangeError(`block ${i} out of range`);
    if (code === CODE_ZERO) return undefined;
    return {
      id: Buffer.from(this.ids.buffer, this.ids.byteOffset).toString('hex', i * this.idLength, (i + 1) * this.idLength),
      codec: CODEC_CODES[code] as Codec,
      storedSize: this.storedSizes[i] as number,
      size: this.blockLength(i),
    };
  }

  blockLength(i: number): number {
    return blockLength(i, this.header.size, this.header.blockSize);
  }

  entry(i: number): IndexEntry {
    const ref = this.ref(i);
    return ref ? { id: ref.id, codec: ref.codec, storedSize: ref.storedSize } : { zero: true };
  }

  *entries(): IterableIterator<IndexEntry> {
    for (let i = 0; i < this.blockCount; i++) yield this.entry(i);
  }

  /**
   * Distinct non-zero blocks, first occurrence wins, in image order. A Map of
   * 4M entries costs ~1.5 GB: for a big index, walk uniqueBlocks() instead.
   */
  uniqueRefs(): Map<string, BlockRef> {
    const out = new Map<string, BlockRef>();
    for (const i of this.uniqueBlocks()) {
      const ref = this.ref(i) as BlockRef;
      out.set(ref.id, ref);
    }
    return out;
  }

  /** The first block of each distinct id, in image order. */
  *uniqueBlocks(): IterableIterator<number> {
    const table = this.idTable();
    for (let i = 0; i < this.blockCount; i++) if (table.isFirst(i)) yield i;
  }

  /** Whether block i is the first block with its id (false for a zero block). */
  isFirst(i: number): boolean {
    return this.idTable().isFirst(i);
  }

  /** The first block whose id is `id` (hex), or -1 when no block has it. */
  findBlock(id: string): number {
    if (id.length !== this.idLength * 2) return -1;
    const raw = Buffer.from(id, 'hex');
    return raw.length === this.idLength ? this.idTable().find(raw) : -1;
  }

  /** Number of distinct ids. */
  uniqueCount(): number {
    return this.idTable().size;
  }

  counts(): { blocks: number; zero: number; unique: number; storedBytes: number } {
    let zero = 0;
    for (let i = 0; i < this.blockCount; i++) if (this.codes[i] === CODE_ZERO) zero++;
    const table = this.idTable();
    return { blocks: this.blockCount, zero, unique: table.size, storedBytes: table.storedBytes };
  }

  private table?: BlockIdTable;

  /** Built on first use: a reader of a few blocks never pays for it. */
  private idTable(): BlockIdTable {
    this.table ??= new BlockIdTable(this.ids, this.idLength, this.codes, this.storedSizes);
    return this.table;
  }
}

export interface DecodedIndex {
  readonly index: ImageIndex;
  /** `sha256:<hex>` of every byte before the `end` line: the index's identity, unchanged by adding signatures. */
  readonly digest: string;
  readonly signatures: readonly IndexSignature[];
  /** The whole file, as decoded. */
  readonly bytes: Uint8Array;
}

// ---------------------------------------------------------------- encoding

function checkHeader(h: IndexHeader): void {
  const bad = (why: string) => new InvalidArgumentError(`index header: ${why}`);
  if (h.version !== FORMAT_VERSION) throw bad(`version ${h.version} is not ${FORMAT_VERSION}`);
  if (!isImageName(h.name)) throw bad(`bad name "${h.name}"`);
  if (!Number.isSafeInteger(h.size) || h.size < 1) throw bad(`bad size ${h.size}`);
  if (!isValidBlockSize(h.blockSize)) throw bad(`bad block size ${h.blockSize}`);
  if (!CREATED.test(h.created)) throw bad(`bad created time "${h.created}"`);
  if (h.previous !== undefined && !DIGEST.test(h.previous)) throw bad(`bad previous digest "${h.previous}"`);
  parseCodecSpec(h.codec);
}

/**
 * Encodes an unsigned index: header, entries, end line. The output depends on
 * nothing but the arguments, so the same image packed with the same options
 * gives the same bytes (pin `created` for bit-identical files).
 */
export function encodeIndex(header: IndexHeader, entries: Iterable<IndexEntry>): Uint8Array {
  checkHeader(header);
  const n = blockCount(header.size, header.blockSize);
  const out = new TextChunks();
  out.write(`${MAGIC} ${header.version}\n`);
  out.write(`name ${header.name}\n`);
  out.write(`size ${header.size}\n`);
  out.write(`block-size ${header.blockSize}\n`);
  out.write(`hash ${header.hash}\n`);
  out.write(`codec ${formatCodecSpec(parseCodecSpec(header.codec))}\n`);
  out.write(`created ${header.created}\n`);
  if (header.previous !== undefined) out.write(`previous ${header.previous}\n`);
  out.write(`blocks ${n}\n`);
  let i = 0;
  for (const e of entries) {
    if (i >= n) throw new InvalidArgumentError(`more entries than the ${n} blocks of a ${header.size}-byte image`);
    if (e.zero) out.write('zero\n');
    else {
      checkEntry(e.id, e.codec, e.storedSize, blockLength(i, header.size, header.blockSize), header.hash, (why) => {
        throw new InvalidArgumentError(`entry ${i}: ${why}`);
      });
      out.write(`${e.id} ${e.codec} ${e.storedSize}\n`);
    }
    i++;
  }
  if (i !== n) throw new InvalidArgumentError(`${i} entries for ${n} blocks`);
  const digest = out.digest();
  out.write(`end sha256:${digest}\n`);
  return out.concat();
}

/**
 * ASCII text written into fixed-size buffers and hashed as each fills: a big
 * index is encoded with no string per line and no joined copy of them all
 * (4,194,304 entries: ~1.8 GB of RSS when lines were joined).
 */
class TextChunks {
  /** 1 MiB: few enough chunks to concatenate cheaply, small enough to waste little in the last. */
  private static readonly SIZE = 1 << 20;
  private readonly full: Buffer[] = [];
  private current = Buffer.allocUnsafe(TextChunks.SIZE);
  private used = 0;
  private readonly hash = createHash('sha256');
  private hashedTo = 0;

  /** `text` is ASCII, shorter than a chunk. */
  write(text: string): void {
    if (this.used + text.length > this.current.length) {
      this.hash.update(this.current.subarray(this.hashedTo, this.used));
      this.full.push(this.current.subarray(0, this.used));
      this.current = Buffer.allocUnsafe(TextChunks.SIZE);
      this.used = 0;
      this.hashedTo = 0;
    }
    this.used += this.current.write(text, this.used, 'latin1');
  }

  /** SHA-256 (hex) of everything written so far; writing may go on, outside the digest. */
  digest(): string {
    this.hash.update(this.current.subarray(this.hashedTo, this.used));
    this.hashedTo = this.used;
    return this.hash.digest('hex');
  }

  concat(): Buffer {
    return Buffer.concat([...this.full, this.current.subarray(0, this.used)]);
  }
}

function checkEntry(
  id: string,
  codec: string,
  storedSize: number,
  length: number,
  hash: HashAlgorithm,
  fail: (why: string, field: string) => never,
): void {
  if (!isBlockId(id, hash)) fail(`"${id.slice(0, 80)}" is not a lowercase ${hash} hex digest`, 'id');
  if (!isCodec(codec)) fail(`unknown codec "${codec.slice(0, 20)}"`, 'codec');
  if (!Number.isSafeInteger(storedSize) || storedSize < 1) fail(`bad stored size ${storedSize}`, 'stored-size');
  if (codec === 'none' && storedSize !== length)
    fail(`a raw block must be stored as ${length} bytes, not ${storedSize}`, 'stored-size');
  if (codec !== 'none' && storedSize >= length)
    fail(`compressed size ${storedSize} is not below the block length ${length}`, 'stored-size');
}

/** Appends a signature line covering every byte of `indexBytes`. */
export function signIndex(indexBytes: Uint8Array, privateKey: KeyObject, rawPublicKey: Uint8Array): Uint8Array {
  return appendSignature(indexBytes, privateKey, rawPublicKey);
}

/** Checks each signature against the bytes it covers. Says nothing about trust: see trust decisions in callers. */
export function verifyIndexSignatures(
  decoded: DecodedIndex,
): { keyId: string; publicKey: Uint8Array; valid: boolean }[] {
  return verifyInlineSignatures(decoded.bytes, decoded.signatures);
}

// ---------------------------------------------------------------- decoding

const CREATED = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** `sha256:<64 lowercase hex>`, an index's digest (FORMAT.md §5.6), as pins, version lists and listings name it. */
export function isIndexDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST.test(s);
}
const DECIMAL = /^(0|[1-9]\d{0,15})$/;
const HEADER_KEYS = ['name', 'size', 'block-size', 'hash', 'codec', 'created', 'previous', 'blocks'] as const;
type HeaderKey = (typeof HEADER_KEYS)[number];

type State = 'magic' | 'header' | 'entries' | 'end' | 'signatures';

/**
 * Push decoder: feed chunks as they arrive, then call finish(). Every line is
 * checked as soon as it is complete, so garbage is rejected early, and memory
 * grows only with the bytes actually received (never with a count the input
 * claims). Errors are IndexFormatError naming the line and field.
 */
export class IndexDecoder {
  private state: State = 'magic';
  private lineNo = 0;
  private offset = 0; // bytes consumed as complete lines
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private readonly chunks: Buffer[] = [];
  private readonly bodyHash = createHash('sha256');
  private nextHeaderKey = 0;
  private readonly fields: Partial<Record<HeaderKey, string>> = {};
  private readonly fieldLines: Partial<Record<HeaderKey, number>> = {};
  private header?: IndexHeader;
  private expected = 0;
  private count = 0;
  private idLength = 20;
  private ids = new Uint8Array(0);
  private codes = new Uint8Array(0);
  private sizes = new Uint32Array(0);
  private digest = '';
  private readonly signatures: IndexSignature[] = [];

  /** Decodes `chunk`, keeping a copy of it: the caller may reuse the buffer. */
  push(chunk: Uint8Array): void {
    this.pushChunk(chunk, true);
  }

  /** As push, but keeps `chunk` itself: the caller gives it up (decodeIndex's whole file, never copied). */
  pushOwned(chunk: Uint8Array): void {
    this.pushChunk(chunk, false);
  }

  private pushChunk(chunk: Uint8Array, copy: boolean): void {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.checkStart(buf);
    this.chunks.push(copy ? Buffer.from(buf) : buf);
    let start = 0;
    for (;;) {
      if (this.state === 'entries' && this.pendingLength === 0) start = this.entryRun(buf, start);
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      let line: Buffer;
      if (this.pendingLength > 0) {
        this.pending.push(buf.subarray(start, nl));
        line = Buffer.concat(this.pending);
        this.pending = [];
        this.pendingLength = 0;
      } else line = buf.subarray(start, nl);
      start = nl + 1;
      this.line(line);
    }
    if (start < buf.length) {
      const rest = buf.subarray(start);
      this.pending.push(Buffer.from(rest));
      this.pendingLength += rest.length;
      if (this.pendingLength > MAX_LINE_LENGTH)
        this.fail(`line longer than ${MAX_LINE_LENGTH} bytes`, undefined, this.lineNo + 1);
    }
  }

  finish(): DecodedIndex {
    if (this.pendingLength > 0) this.fail('truncated: last line has no newline', undefined, this.lineNo + 1);
    if (this.state === 'magic' || this.state === 'header')
      this.fail('truncated in the header', undefined, this.lineNo + 1);
    if (this.state === 'entries') {
      this.fail(`truncated: ${this.count} of ${this.expected} block entries, no end line`, undefined, this.lineNo + 1);
    }
    if (this.state === 'end') this.fail('truncated: no end line', 'end', this.lineNo + 1);
    const header = this.header as IndexHeader;
    const n = this.count;
    const index = new ImageIndex(
      header,
      this.ids.subarray(0, n * this.idLength),
      this.codes.subarray(0, n),
      this.sizes.subarray(0, n),
    );
    const bytes = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    return { index, digest: this.digest, signatures: this.signatures, bytes };
  }

  /** Bytes of the file seen so far, for the check of its first bytes. */
  private received = 0;

  /**
   * A file that does not start with `thfc-index` is not an index at all: say
   * so at once, rather than name the first odd byte or an overlong line (a
   * disk image given where an index belongs is the usual case).
   */
  private checkStart(buf: Buffer): void {
    const prefix = MAGIC;
    if (this.received < prefix.length) {
      const n = Math.min(buf.length, prefix.length - this.received);
      if (buf.subarray(0, n).toString('latin1') !== prefix.slice(this.received, this.received + n))
        this.fail(`not a thfc index: it does not start with "${MAGIC}" (a disk image or another file?)`, 'magic', 1);
    }
    this.received += buf.length;
  }

  private fail(reason: string, field?: string, line = this.lineNo): never {
    throw new IndexFormatError(reason, line, field);
  }

  private line(raw: Buffer): void {
    this.lineNo++;
    const lineStart = this.offset;
    this.offset += raw.length + 1;
    if (raw.length > MAX_LINE_LENGTH) this.fail(`line longer than ${MAX_LINE_LENGTH} bytes`);
    for (const b of raw)
      if (b < 0x20 || b > 0x7e) this.fail(`byte 0x${b.toString(16).padStart(2, '0')} is not printable ASCII`);
    const text = raw.toString('latin1');
    if (this.state !== 'end' && this.state !== 'signatures') {
      this.bodyHash.update(raw);
      this.bodyHash.update('\n');
    }
    if (this.state === 'magic') this.magic(text);
    else if (this.state === 'header') this.headerLine(text);
    else if (this.state === 'entries') this.entryLine(text);
    else this.signatureLine(text, lineStart);
  }

  private magic(text: string): void {
    const parts = text.split(' ');
    if (parts[0] !== MAGIC) this.fail(`not a thfc index (first line must be "${MAGIC} ${FORMAT_VERSION}")`, 'magic');
    if (parts.length !== 2 || !DECIMAL.test(parts[1] as string)) this.fail('bad version field', 'version');
    if (Number(parts[1]) !== FORMAT_VERSION) {
      this.fail(`format version ${parts[1]} is not supported (this build reads version ${FORMAT_VERSION})`, 'version');
    }
    this.state = 'header';
  }

  private headerLine(text: string): void {
    const sp = text.indexOf(' ');
    const key = sp < 0 ? text : text.slice(0, sp);
    const value = sp < 0 ? '' : text.slice(sp + 1);
    let want = HEADER_KEYS[this.nextHeaderKey] as HeaderKey;
    if (want === 'previous' && key !== 'previous') want = HEADER_KEYS[++this.nextHeaderKey] as HeaderKey;
    if (key !== want) {
      this.fail(
        (HEADER_KEYS as readonly string[]).includes(key)
          ? `header key "${key}" out of order (expected "${want}")`
          : `unknown header key "${key.slice(0, 40)}" (expected "${want}")`,
        key.slice(0, 40),
      );
    }
    if (value === '' || value.includes(' ')) this.fail('value must be one non-empty word', key);
    this.fields[key as HeaderKey] = value;
    this.fieldLines[key as HeaderKey] = this.lineNo;
    this.nextHeaderKey++;
    if (key === 'blocks') this.startEntries();
  }

  private startEntries(): void {
    const f = this.fields;
    // Values are checked here, once all are known, but each error names the line its key was on.
    const bad: (why: string, key: HeaderKey) => never = (why, key) => this.fail(why, key, this.fieldLines[key]);
    const num = (key: HeaderKey): number => {
      const v = f[key] as string;
      if (!DECIMAL.test(v)) bad(`"${v}" is not a decimal number`, key);
      const n = Number(v);
      if (!Number.isSafeInteger(n)) bad(`${v} is too large`, key);
      return n;
    };
    const name = f.name as string;
    if (!isImageName(name)) bad(`bad image name "${name}"`, 'name');
    const size = num('size');
    if (size < 1 || size > MAX_IMAGE_SIZE) bad(`bad image size ${size}`, 'size');
    const blockSize = num('block-size');
    if (!isValidBlockSize(blockSize)) bad(`${blockSize} is not a power of two from 4096 to 4194304`, 'block-size');
    const hash = f.hash;
    if (hash !== 'sha1' && hash !== 'sha256') bad(`unknown hash "${hash}"`, 'hash');
    const codec = f.codec as string;
    let canonical = '';
    try {
      canonical = formatCodecSpec(parseCodecSpec(codec));
    } catch (e) {
      bad((e as ThfcError).message, 'codec');
    }
    // One spelling per spec (`zstd:3`, never `zstd` or `zstd:03`), as encodeIndex writes it.
    if (codec !== canonical) bad(`"${codec}" must be written "${canonical}"`, 'codec');
    if (!CREATED.test(f.created as string))
      bad(`"${f.created}" is not a UTC time like 2026-01-31T12:00:00Z`, 'created');
    if (f.previous !== undefined && !DIGEST.test(f.previous)) bad(`"${f.previous}" is not sha256:<64 hex>`, 'previous');
    const blocks = num('blocks');
    const n = blockCount(size, blockSize);
    if (blocks !== n) bad(`${blocks} blocks, but a ${size}-byte image of ${blockSize}-byte blocks has ${n}`, 'blocks');
    if (n > MAX_BLOCKS) bad(`${n} blocks is more than ${MAX_BLOCKS}`, 'blocks');
    this.header = {
      version: FORMAT_VERSION,
      name,
      size,
      blockSize,
      hash,
      codec: f.codec as string,
      created: f.created as string,
      previous: f.previous,
    };
    this.expected = n;
    this.idLength = hashLength(hash);
    this.state = n === 0 ? 'end' : 'entries';
  }

  /**
   * Room for more entries. `ahead`: bytes already received and not yet
   * parsed; each entry line takes at least 5 of them, so a whole index given
   * at once is sized in one step, with no copies left behind to collect.
   */
  private grow(ahead = 0): void {
    const cap = Math.min(this.expected, Math.max(1024, this.codes.length * 2, this.count + Math.ceil(ahead / 5)));
    [this.ids, this.codes, this.sizes] = grownColumns(this.ids, this.codes, this.sizes, cap, this.idLength);
  }

  private entryLine(text: string): void {
    if (text.startsWith('end ') || text === 'end') {
      this.fail(`end line after ${this.count} of ${this.expected} block entries`, 'blocks');
    }
    const header = this.header as IndexHeader;
    const i = this.count;
    if (i >= this.codes.length) this.grow();
    if (text === 'zero') {
      this.codes[i] = CODE_ZERO;
    } else {
      const parts = text.split(' ');
      if (parts.length !== 3) this.fail('expected "<id> <codec> <stored-size>" or "zero"', 'entry');
      const [id, codec, sizeText] = parts as [string, string, string];
      if (!DECIMAL.test(sizeText)) this.fail(`"${sizeText.slice(0, 20)}" is not a decimal number`, 'stored-size');
      const length = blockLength(i, header.size, header.blockSize);
      checkEntry(id, codec, Number(sizeText), length, header.hash, (why, field) => this.fail(why, field));
      this.ids.set(Buffer.from(id, 'hex'), i * this.idLength);
      this.codes[i] = CODEC_CODES.indexOf(codec as Codec);
      this.sizes[i] = Number(sizeText);
    }
    this.count++;
    if (this.count === this.expected) this.state = 'end';
  }

  /**
   * The fast path for entry lines, which are nearly all of a big index: parses
   * complete lines of `buf` from `start` in place (no string, no copy, one hash
   * update per run) while each is a well-formed entry, and returns where it
   * stopped. It accepts only lines entryLine would accept with the same
   * result, so anything else (an error, the end line, a line split across
   * chunks) is left to the line-by-line path, which names the fault.
   */
  private entryRun(buf: Buffer, start: number): number {
    const header = this.header as IndexHeader;
    const hexLength = this.idLength * 2;
    const lastLength = blockLength(this.expected - 1, header.size, header.blockSize);
    const runStart = start;
    let p = start;
    while (this.count < this.expected) {
      const i = this.count;
      const length = i === this.expected - 1 ? lastLength : header.blockSize;
      let q = p;
      let code: number;
      let stored = 0;
      if (buf[q] === 0x7a && buf[q + 1] === 0x65 && buf[q + 2] === 0x72 && buf[q + 3] === 0x6f && buf[q + 4] === 10) {
        // zero
        code = CODE_ZERO;
        q += 5;
      } else {
        if (q + hexLength + 7 > buf.length || buf[q + hexLength] !== 0x20) break;
        if (i >= this.codes.length) this.grow(buf.length - q);
        if (!hexInto(buf, q, this.ids, i * this.idLength, this.idLength)) break;
        q += hexLength + 1;
        code = codecCodeAt(buf, q);
        if (code === CODE_ZERO || buf[q + 4] !== 0x20) break;
        q += 5;
        const digits = q;
        while (q < buf.length && q - digits <= 16) {
          const c = buf[q] as number;
          if (c < 0x30 || c > 0x39) break;
          stored = stored * 10 + (c - 0x30);
          q++;
        }
        const n = q - digits;
        if (q >= buf.length || buf[q] !== 10 || n === 0 || n > 16 || (n > 1 && buf[digits] === 0x30)) break;
        if (stored < 1 || (code === CODE_NONE ? stored !== length : stored >= length)) break;
        q++;
      }
      if (i >= this.codes.length) this.grow(buf.length - p);
      this.codes[i] = code;
      this.sizes[i] = stored;
      this.count++;
      this.lineNo++;
      this.offset += q - p;
      p = q;
    }
    if (p > runStart) this.bodyHash.update(buf.subarray(runStart, p));
    if (this.count === this.expected) this.state = 'end';
    return p;
  }

  private signatureLine(text: string, lineStart: number): void {
    if (this.state === 'end') {
      const digest = `sha256:${this.bodyHash.copy().digest('hex')}`;
      const m = /^end (sha256:[0-9a-f]{64})$/.exec(text);
      if (!m) {
        this.fail(
          text.startsWith('end')
            ? 'end line must be "end sha256:<64 hex>"'
            : `more than the ${this.expected} block entries the header declares`,
          'end',
        );
      }
      if (m[1] !== digest) this.fail('digest does not match the index body (the index was changed or damaged)', 'end');
      this.digest = digest;
      this.state = 'signatures';
      return;
    }
    this.signatures.push(parseSignatureLine(text, lineStart, this.lineNo, (why, field) => this.fail(why, field)));
  }
}

/** Decodes a whole index. The result's `bytes` is `bytes` itself, not a copy. */
export function decodeIndex(bytes: Uint8Array): DecodedIndex {
  const d = new IndexDecoder();
  d.pushOwned(bytes);
  return d.finish();
}
