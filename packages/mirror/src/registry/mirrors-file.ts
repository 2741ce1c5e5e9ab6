import { InvalidArgumentError, UsageError } from '@thfc/format';
import { mirrorIdFromUrl, validateMirrorRecord } from './mirror-record.js';
import type { MirrorRecord } from './registry.js';

/**
 * The mirrors file: the static registry of one machine or a small fleet with
 * no Redis. Plain text, one mirror per line (docs/dns-balance.md):
 *
 *   # URL                          REGION  [CAPACITY]
 *   http://127.0.0.1:8080/         jp      64
 *   http://mirror.example.org/thfc/ us
 *
 * Blank lines and `#` comments are ignored. The record id is the URL's
 * `host:port`; two lines with the same id are an error. To take a mirror
 * out, comment its line: the file is re-read when it changes.
 */

/**
 * Capacity when a line gives none. It only matters next to heartbeat load
 * reports (a static mirror reports load 0, so badness is 0 whatever its
 * capacity); 64 is the order of concurrent requests one mirror serves
 * before it sheds load.
 */
export const DEFAULT_FILE_CAPACITY = 64;

/** A mirrors file is a handful of lines; 1 MiB bounds a wrong path (a disk image) without limiting real use. */
export const MAX_MIRRORS_FILE_BYTES = 1024 * 1024;

export interface MirrorsFileEntry {
  readonly id: string;
  readonly url: string;
  readonly region: string;
  readonly capacity: number;
}

/** Parses the text of a mirrors file; `file` names it in errors, which also give the line. */
export function parseMirrorsFile(text: string, file = 'mirrors file'): MirrorsFileEntry[] {
  if (text.length > MAX_MIRRORS_FILE_BYTES)
    throw new UsageError(`${file}: larger than ${MAX_MIRRORS_FILE_BYTES} bytes`);
  const entries: MirrorsFileEntry[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const fields = (raw.split('#')[0] as string).trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0) return;
    const bad = (why: string) => new UsageError(`${file} line ${line}: ${why}`);
    if (fields.length < 2 || fields.length > 3) {
      throw bad(`expected "URL REGION [CAPACITY]", found ${fields.length} field(s)`);
    }
    const [url, region, capacityText] = fields as [string, string, string | undefined];
    const capacity = capacityText === undefined ? DEFAULT_FILE_CAPACITY : Number(capacityText);
    let record: MirrorRecord;
    try {
      record = validateMirrorRecord({
        id: mirrorIdFromUrl(url),
        url,
        region,
        capacity,
        load: 0,
        health: 'ok',
        updated: 0,
      });
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw bad(e.message.replace(/^mirror record: /, ''));
      throw e;
    }
    const before = seen.get(record.id);
    if (before !== undefined) throw bad(`mirror ${record.id} is already listed on line ${before}`);
    seen.set(record.id, line);
    entries.push({ id: record.id, url: record.url, region: record.region, capacity: record.capacity });
  });
  return entries;
}
