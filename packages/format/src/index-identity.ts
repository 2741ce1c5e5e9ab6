import { IndexFormatError } from './errors.js';
import { MAGIC } from './image-index.js';

/** What a version store needs to know of an encoded index, read without decoding its entries. */
export interface IndexIdentity {
  readonly name: string;
  readonly created: string;
  /** The digest its `end` line claims (decodeIndex checks it; this does not). */
  readonly digest: string;
}

/** Header lines are short; the ones read here come within the first few hundred bytes. */
const HEADER_PEEK_BYTES = 4096;

/**
 * The name, creation time and claimed digest of an encoded index, from its
 * first lines and its `end` line: a 4-million-entry index is ~200 MB, and a
 * full decode to learn three fields would cost seconds and hundreds of MB.
 * For the publisher's own output and its own store; anything read from a
 * network goes through decodeIndex.
 */
export function peekIndexIdentity(bytes: Uint8Array, where = 'index'): IndexIdentity {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string) => new IndexFormatError(why, undefined, undefined, where);
  const head = buf.toString('latin1', 0, Math.min(buf.length, HEADER_PEEK_BYTES)).split('\n');
  if (!head[0]?.startsWith(`${MAGIC} `)) throw bad(`not a thfc index (no "${MAGIC}" line)`);
  const field = (key: string) => head.find((l) => l.startsWith(`${key} `))?.slice(key.length + 1);
  const name = field('name');
  const created = field('created');
  if (!name || !created) throw bad('no name or created line in the header');
  const at = buf.lastIndexOf('\nend sha256:');
  const m = at < 0 ? null : /^end (sha256:[0-9a-f]{64})$/.exec(buf.toString('latin1', at + 1, at + 1 + 75));
  if (!m) throw bad('no end line');
  return { name, created, digest: m[1] as string };
}
