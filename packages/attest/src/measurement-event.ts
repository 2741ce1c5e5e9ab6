import { isBlockId, isImageName, isIndexDigest } from '@thfc/format';
import { MeasurementLogFormatError } from './errors.js';
import { type BankDigests, bankHash, PCR_COUNT } from './pcr-bank.js';

/**
 * The measurement log's text form: one line per measurement, in the column
 * order of IMA's `ascii_runtime_measurements` (the seed's GRUB-IMA log):
 *
 *   PCR  TEMPLATE-DIGEST  TEMPLATE-NAME  DATA…
 *   23 5b1c…(40 hex) thfc-index sha256:767f…bb44 debian-12 34750f98bd59fcfc
 *   23 0e9a…(40 hex) thfc-block sha256:767f…bb44 sha1:b76bc4cb62e9fd50162bfd061c5c81a5c144c47d
 *
 * Templates:
 *   thfc-index  INDEX-DIGEST IMAGE-NAME KEY-ID   an index was mounted; KEY-ID is the key whose
 *                                                 signature the trust policy accepted, `-` if none
 *   thfc-block  INDEX-DIGEST HASH:BLOCK-ID       a reader first used this block of that index
 *
 * The template digest in bank H is H("TEMPLATE-NAME DATA…"): the ASCII of the
 * line after the second column, no newline. The line shows the SHA-1 digest,
 * as the seed's log does; the SHA-256 one is recomputed from the same text.
 * Each digest is extended into the line's PCR in its bank (pcr-bank.ts).
 */
export const INDEX_TEMPLATE = 'thfc-index';
export const BLOCK_TEMPLATE = 'thfc-block';

export type MeasurementEvent =
  | { readonly template: typeof INDEX_TEMPLATE; readonly index: string; readonly image: string; readonly keyId: string }
  | { readonly template: typeof BLOCK_TEMPLATE; readonly index: string; readonly block: string };

export interface LogEntry {
  readonly pcr: number;
  readonly event: MeasurementEvent;
  /** 1-based, when parsed from text. */
  readonly line?: number | undefined;
}

const KEY_ID = /^([0-9a-f]{16}|-)$/;
const SHA1_HEX = /^[0-9a-f]{40}$/;
const PCR = /^(0|[1-9]\d?)$/;

/** `thfc-index sha256:… debian 0123…`: what the template digests hash. */
export function templateText(event: MeasurementEvent): string {
  return event.template === INDEX_TEMPLATE
    ? `${INDEX_TEMPLATE} ${event.index} ${event.image} ${event.keyId}`
    : `${BLOCK_TEMPLATE} ${event.index} ${event.block}`;
}

export function templateDigests(event: MeasurementEvent): BankDigests {
  const text = templateText(event);
  return { sha1: bankHash('sha1', text), sha256: bankHash('sha256', text) };
}

/** The block field: `sha1:<40 hex>` or `sha256:<64 hex>`, by the id's length. */
export function blockField(blockId: string): string {
  return `${blockId.length === 40 ? 'sha1' : 'sha256'}:${blockId}`;
}

export function formatLogLine(entry: LogEntry): string {
  return `${entry.pcr} ${templateDigests(entry.event).sha1.toString('hex')} ${templateText(entry.event)}\n`;
}

export function checkEvent(event: MeasurementEvent): void {
  const fail = (why: string) => {
    throw new MeasurementLogFormatError(why, undefined);
  };
  if (!isIndexDigest(event.index)) fail(`bad index digest "${event.index}"`);
  if (event.template === INDEX_TEMPLATE) {
    if (!isImageName(event.image)) fail(`bad image name "${event.image}"`);
    if (!KEY_ID.test(event.keyId)) fail(`bad key id "${event.keyId}"`);
  } else if (!isBlockField(event.block)) fail(`bad block "${event.block}"`);
}

function isBlockField(s: string): boolean {
  const m = /^(sha1|sha256):([0-9a-f]+)$/.exec(s);
  return !!m && isBlockId(m[2] as string, m[1] as 'sha1' | 'sha256');
}

/**
 * Strict decoder: every line is checked, including that its digest is its
 * data's, and errors name the line and column. Blank space after the last
 * line is ignored: the mount's status file pads with spaces.
 */
export function parseLog(text: string, source = 'measurement log'): LogEntry[] {
  const body = text.replace(/[ \n]+$/, '');
  if (body === '') return [];
  const entries: LogEntry[] = [];
  body.split('\n').forEach((l, i) => {
    const line = i + 1;
    const fail: (why: string, field?: string) => never = (why, field) => {
      throw new MeasurementLogFormatError(why, line, field, source);
    };
    if (!/^[\x20-\x7e]*$/.test(l)) fail('not printable ASCII');
    const [pcrText = '', digest = '', template = '', ...data] = l.split(' ');
    if (!PCR.test(pcrText) || Number(pcrText) >= PCR_COUNT) fail(`"${pcrText.slice(0, 10)}" is not a PCR 0-23`, 'pcr');
    if (!SHA1_HEX.test(digest)) fail('expected a 40-hex-digit SHA-1 template digest', 'digest');
    let event: MeasurementEvent;
    if (template === INDEX_TEMPLATE) {
      if (data.length !== 3) fail('expected INDEX-DIGEST IMAGE-NAME KEY-ID', 'data');
      const [index, image, keyId] = data as [string, string, string];
      event = { template, index, image, keyId };
    } else if (template === BLOCK_TEMPLATE) {
      if (data.length !== 2) fail('expected INDEX-DIGEST HASH:BLOCK-ID', 'data');
      const [index, block] = data as [string, string];
      event = { template, index, block };
    } else fail(`unknown template "${template.slice(0, 20)}"`, 'template');
    try {
      checkEvent(event);
    } catch (e) {
      fail((e as MeasurementLogFormatError).reason, 'data');
    }
    if (templateDigests(event).sha1.toString('hex') !== digest)
      fail('template digest does not match its data', 'digest');
    entries.push({ pcr: Number(pcrText), event, line });
  });
  return entries;
}
