import { readFile } from 'node:fs/promises';
import { fsError } from '@thfc/format';
import { BLOCK_TEMPLATE, INDEX_TEMPLATE, parseLog, templateDigests } from './measurement-event.js';
import { replayPcr } from './pcr-bank.js';

export interface ReplayOptions {
  /** A measurement log file (MOUNTPOINT/.thfc/measurements, or a copy of it). */
  readonly log: string;
}

export interface ReplayReport {
  readonly entries: number;
  readonly indexes: number;
  readonly blocks: number;
  /** Final values per PCR the log extends, lowercase hex. */
  readonly pcrs: readonly { pcr: number; sha1: string; sha256: string }[];
}

/** Recomputes the final PCR values a log implies, from zero, in both banks. */
export async function runReplay(options: ReplayOptions): Promise<ReplayReport> {
  let text: string;
  try {
    text = await readFile(options.log, 'latin1');
  } catch (e) {
    throw fsError(e, `log ${options.log}`);
  }
  const entries = parseLog(text, options.log);
  const byPcr = new Map<number, typeof entries>();
  for (const e of entries) byPcr.set(e.pcr, [...(byPcr.get(e.pcr) ?? []), e]);
  return {
    entries: entries.length,
    indexes: entries.filter((e) => e.event.template === INDEX_TEMPLATE).length,
    blocks: entries.filter((e) => e.event.template === BLOCK_TEMPLATE).length,
    pcrs: [...byPcr.entries()]
      .sort(([a], [b]) => a - b)
      .map(([pcr, es]) => {
        const v = replayPcr(es.map((e) => templateDigests(e.event)));
        return { pcr, sha1: v.sha1.toString('hex'), sha256: v.sha256.toString('hex') };
      }),
  };
}
