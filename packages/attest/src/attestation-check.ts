import { BLOCK_TEMPLATE, INDEX_TEMPLATE, type LogEntry, templateDigests } from './measurement-event.js';
import { extendPcr, isPcrBank, PCR_BANKS, type PcrBank, zeroPcr } from './pcr-bank.js';
import { pcrDigestOf, type QuoteAttest } from './quote-file.js';

/**
 * The verifier's judgement, pure: given a quote whose signature already
 * checked out (tpm2_checkquote), the log, and the indexes the verifier
 * expects, it checks that
 *   1. the quote binds the verifier's nonce (freshness);
 *   2. the quote selects one PCR, in the sha1 and/or sha256 bank, and every
 *      log entry extends that PCR;
 *   3. the log replays to the quoted PCR digest: after its first N entries
 *      for some N (entries after N were logged after the quote was taken and
 *      are reported, not trusted). An entry changed, removed or reordered
 *      anywhere in the first N breaks the hash chain, so no N matches;
 *   4. every index measured in those N entries is an expected one (same
 *      digest; the name must match too);
 *   5. every block measured in them belongs to an index measured before it.
 */
export interface ExpectedIndex {
  readonly digest: string;
  readonly name: string;
  /** Whether a block id is one of the index's (its id table answers; no Set of every id). */
  readonly blocks: { has(id: string): boolean };
  readonly source: string;
}

export interface AttestationReport {
  readonly ok: boolean;
  readonly pcr: number | null;
  readonly banks: readonly string[];
  /** Entries the quote covers (the replay matched after this many); null when no prefix matched. */
  readonly quotedEntries: number | null;
  /** Entries after the quoted ones: logged after the quote, not attested. */
  readonly unquotedEntries: number;
  readonly indexes: readonly { image: string; digest: string; keyId: string; expected: boolean }[];
  readonly blocks: number;
  readonly problems: readonly string[];
}

export function checkAttestation(input: {
  readonly entries: readonly LogEntry[];
  readonly attest: QuoteAttest;
  readonly nonce: Uint8Array;
  readonly expected: readonly ExpectedIndex[];
}): AttestationReport {
  const { entries, attest } = input;
  const problems: string[] = [];
  const fail = (pcr: number | null, banks: readonly string[]): AttestationReport => ({
    ok: false,
    pcr,
    banks,
    quotedEntries: null,
    unquotedEntries: entries.length,
    indexes: [],
    blocks: 0,
    problems,
  });
  if (!Buffer.from(input.nonce).equals(attest.nonce)) {
    problems.push(
      `the quote binds nonce ${attest.nonce.toString('hex') || '(none)'}, not the expected one (a replay?)`,
    );
  }
  const banks = attest.selection.filter((s) => s.pcrs.length > 0).map((s) => s.bank);
  const pcrs = new Set(attest.selection.flatMap((s) => s.pcrs));
  if (pcrs.size !== 1 || banks.length === 0) {
    problems.push(`the quote must select exactly one PCR; it selects ${[...pcrs].join(', ') || 'none'}`);
    return fail(null, banks);
  }
  const pcr = [...pcrs][0] as number;
  const unknown = banks.filter((b) => !isPcrBank(b));
  if (unknown.length) {
    problems.push(`the quote selects banks the log does not keep: ${unknown.join(', ')}`);
    return fail(pcr, banks);
  }
  const stray = entries.find((e) => e.pcr !== pcr);
  if (stray) problems.push(`log line ${stray.line ?? '?'} extends PCR ${stray.pcr}, not the quoted PCR ${pcr}`);

  const quoted = quotedPrefix(entries, attest, pcr);
  if (quoted === null) {
    problems.push(
      `the log does not replay to the quoted PCR ${pcr} (${banks.join('+')}): an entry was changed, removed or ` +
        'reordered, or the log is not the one this TPM measured',
    );
    return fail(pcr, banks);
  }

  const { indexes, blocks } = checkQuotedEntries(entries.slice(0, quoted), input.expected, problems);
  return {
    ok: problems.length === 0,
    pcr,
    banks,
    quotedEntries: quoted,
    unquotedEntries: entries.length - quoted,
    indexes,
    blocks,
    problems,
  };
}

/**
 * Replays the log, looking for the prefix whose values the quote carries: the number of entries it covers, or
 * null when no prefix matches.
 */
function quotedPrefix(entries: readonly LogEntry[], attest: QuoteAttest, pcr: number): number | null {
  const values: Record<PcrBank, Buffer> = { sha1: zeroPcr('sha1'), sha256: zeroPcr('sha256') };
  const digestNow = () =>
    pcrDigestOf(attest.selection, (bank, p) => (p === pcr && isPcrBank(bank) ? values[bank] : undefined));
  let quoted: number | null = digestNow()?.equals(attest.pcrDigest) ? 0 : null;
  for (let i = 0; i < entries.length && quoted === null; i++) {
    const d = templateDigests((entries[i] as LogEntry).event);
    for (const bank of PCR_BANKS) values[bank] = extendPcr(bank, values[bank], d[bank]);
    if (digestNow()?.equals(attest.pcrDigest)) quoted = i + 1;
  }
  return quoted;
}

/** Checks the quoted entries against the expected indexes; pushes what is wrong onto `problems`. */
function checkQuotedEntries(
  quoted: readonly LogEntry[],
  expectedIndexes: readonly ExpectedIndex[],
  problems: string[],
): { indexes: AttestationReport['indexes']; blocks: number } {
  const byDigest = new Map(expectedIndexes.map((x) => [x.digest, x]));
  const measured = new Map<string, ExpectedIndex | undefined>();
  const indexes: { image: string; digest: string; keyId: string; expected: boolean }[] = [];
  let blocks = 0;
  for (const e of quoted) {
    const ev = e.event;
    const where = `log line ${e.line ?? '?'}`;
    if (ev.template === INDEX_TEMPLATE) {
      const x = byDigest.get(ev.index);
      const expected = x !== undefined && x.name === ev.image;
      if (!x) problems.push(`${where}: index ${ev.image} ${ev.index} is not one of the expected indexes`);
      else if (!expected)
        problems.push(`${where}: index ${ev.index} is ${x.name} (${x.source}), but logged as ${ev.image}`);
      measured.set(ev.index, expected ? x : undefined);
      indexes.push({ image: ev.image, digest: ev.index, keyId: ev.keyId, expected });
    } else if (ev.template === BLOCK_TEMPLATE) {
      blocks++;
      const id = ev.block.slice(ev.block.indexOf(':') + 1);
      if (!measured.has(ev.index))
        problems.push(`${where}: block ${id} of index ${ev.index}, which was not measured before it`);
      else {
        const x = measured.get(ev.index);
        if (x && !x.blocks.has(id)) problems.push(`${where}: block ${id} is not a block of ${x.name} (${x.source})`);
      }
    }
  }
  return { indexes, blocks };
}
