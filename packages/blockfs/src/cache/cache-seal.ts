import { createHash } from 'node:crypto';
import { IndexFormatError, InvalidArgumentError, isBlockId } from '@thfc/format';
import type { FileIdentity } from '../io/file-identity.js';

/**
 * Cache seal format v1 (docs/FORMAT.md §11): the entries of a block cache
 * that were verified, each with the identity of the file that was verified,
 * as a clean stop of httpstorged leaves them in `CACHE/seal`:
 *
 *   thfc-cache-seal 1
 *   entries 1928
 *   <id> <dev> <ino> <size> <ctime-ns> <mtime-ns>   one line per entry, ids in ascending order
 *   end sha256:<64 hex>                             digest of every byte before this line
 *
 * A seal is a list of facts each bound to an identity, not a promise about
 * the whole cache: a start trusts an entry only if its file still has that
 * identity. The end digest catches damage (a torn or truncated file, a
 * flipped bit); it is not a signature: whoever can write the cache directory
 * can write a seal (docs/TRUST.md §5).
 */
export const SEAL_MAGIC = 'thfc-cache-seal';
export const SEAL_VERSION = 1;
/** 16 Mi entries: 4 TiB of 256 KiB blocks, past any cache; a count above it is damage. */
export const MAX_SEAL_ENTRIES = 1 << 24;

const U64_MAX = '18446744073709551615';
const I64_MAX = '9223372036854775807';
/**
 * The common entry line, matched at once: an id, then dev, ino and size
 * below 10^19 and times below 9·10^18 in magnitude (canonical decimal, so
 * one version of a file has one spelling). Lines outside it (a number near
 * its type's limit) go through checkEntry, which takes any in-range value.
 */
const FAST_ENTRY =
  /^(?:[0-9a-f]{40}|[0-9a-f]{64}) (?:0|[1-9]\d{0,18}) (?:0|[1-9]\d{0,18}) (?:0|[1-9]\d{0,18}) (?:0|-?[1-9]\d{0,17}|-?[1-8]\d{18}) (?:0|-?[1-9]\d{0,17}|-?[1-8]\d{18})$/;
const COLUMNS = ['id', 'dev', 'ino', 'size', 'ctime', 'mtime'] as const;

/** The text of a seal holding `entries` (block id → identity of its verified file), ids sorted. */
export function encodeSeal(entries: Iterable<readonly [string, FileIdentity]>): Uint8Array {
  const lines: string[] = [];
  for (const [id, identity] of entries) {
    const line = `${id} ${identity}`;
    if (!FAST_ENTRY.test(line)) {
      checkEntry(line, (why, field) => {
        throw new InvalidArgumentError(`not a seal entry (${field ?? 'line'}: ${why}): "${line.slice(0, 200)}"`);
      });
    }
    lines.push(line);
  }
  lines.sort();
  for (let i = 1; i < lines.length; i++) {
    const id = (lines[i] as string).slice(0, (lines[i] as string).indexOf(' '));
    if ((lines[i - 1] as string).startsWith(`${id} `)) throw new InvalidArgumentError(`block ${id} listed twice`);
  }
  if (lines.length > MAX_SEAL_ENTRIES) throw new InvalidArgumentError(`more than ${MAX_SEAL_ENTRIES} entries`);
  const body = `${SEAL_MAGIC} ${SEAL_VERSION}\nentries ${lines.length}\n${lines.length ? `${lines.join('\n')}\n` : ''}`;
  return Buffer.from(`${body}end sha256:${createHash('sha256').update(body).digest('hex')}\n`, 'latin1');
}

/**
 * Strict decoder: a wrong magic or version, a count that is not canonical
 * decimal, an entry line that is not an id and five canonical decimal numbers
 * in range, ids out of order or repeated, fewer or more lines than declared,
 * or an end digest that does not match refuse the whole seal, with an
 * IndexFormatError naming the file (`source`), line and column.
 */
export function decodeSeal(bytes: Uint8Array, source = 'seal'): Map<string, FileIdentity> {
  const fail = (why: string, line: number | undefined, field?: string): never => {
    throw new IndexFormatError(why, line, field, source);
  };
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (!text.endsWith('\n')) fail('truncated: the last line has no newline', undefined);
  const lines = text.slice(0, -1).split('\n');
  if (lines[0] !== `${SEAL_MAGIC} ${SEAL_VERSION}`) {
    fail(
      lines[0]?.startsWith(`${SEAL_MAGIC} `) ? `not a v${SEAL_VERSION} seal` : `expected "${SEAL_MAGIC} 1"`,
      1,
      'version',
    );
  }
  const countLine = lines[1];
  if (countLine === undefined) fail('truncated in the header', 2);
  const countText = (countLine as string).startsWith('entries ') ? (countLine as string).slice(8) : undefined;
  if (countText === undefined) fail('expected "entries N"', 2, 'entries');
  if (!/^(0|[1-9]\d{0,8})$/.test(countText as string)) {
    fail(`"${(countText as string).slice(0, 20)}" is not a count`, 2, 'entries');
  }
  const count = Number(countText);
  if (count > MAX_SEAL_ENTRIES) fail(`more than ${MAX_SEAL_ENTRIES} entries`, 2, 'entries');
  const endAt = 2 + count;
  if (lines.length < endAt + 1) {
    fail(`truncated: fewer than the ${count} entry lines declared, or no end line`, lines.length + 1, 'end');
  }
  const entries = new Map<string, FileIdentity>();
  let previous = '';
  for (let i = 2; i < endAt; i++) {
    const line = lines[i] as string;
    let id: string;
    let identity: FileIdentity;
    if (FAST_ENTRY.test(line)) {
      const space = line.indexOf(' ');
      id = line.slice(0, space);
      identity = line.slice(space + 1);
    } else [id, identity] = checkEntry(line, (why, field) => fail(why, i + 1, field));
    if (id <= previous) fail(id === previous ? `block ${id} listed twice` : 'ids out of order', i + 1, 'id');
    previous = id;
    entries.set(id, identity);
  }
  let bodyLength = 0;
  for (let i = 0; i < endAt; i++) bodyLength += (lines[i] as string).length + 1;
  const digest = createHash('sha256').update(bytes.subarray(0, bodyLength)).digest('hex');
  const end = lines[endAt] as string;
  if (end !== `end sha256:${digest}`) {
    fail(
      end.startsWith('end ') ? 'digest does not match the seal (changed or damaged)' : 'expected the end line',
      endAt + 1,
      'end',
    );
  }
  if (lines.length > endAt + 1) fail('text after the end line', endAt + 2);
  return entries;
}

/** A line FAST_ENTRY refused: the entry if every column is in range after all, else `fail` names the column. */
function checkEntry(line: string, fail: (why: string, field?: string) => never): [string, FileIdentity] {
  const f = line.split(' ');
  const id = f[0] as string;
  if (!isBlockId(id)) fail(`"${id.slice(0, 80)}" is not a block id`, 'id');
  for (let c = 1; c < COLUMNS.length; c++) {
    const v = f[c];
    if (v === undefined) return fail('missing', COLUMNS[c]);
    const signed = c >= 4;
    const ok = signed ? /^(0|-?[1-9]\d*)$/.test(v) : /^(0|[1-9]\d*)$/.test(v);
    if (!ok || !fits(v.replace(/^-/, ''), signed ? I64_MAX : U64_MAX)) {
      fail(`"${v.slice(0, 30)}" is not a${signed ? ' signed' : 'n unsigned'} 64-bit decimal number`, COLUMNS[c]);
    }
  }
  if (f.length !== COLUMNS.length) fail(`${f.length} columns, expected ${COLUMNS.length}`);
  return [id, f.slice(1).join(' ')];
}

function fits(digits: string, max: string): boolean {
  return digits.length < max.length || (digits.length === max.length && digits <= max);
}
