import { describe, expect, it } from 'vitest';
import { checkAttestation, type ExpectedIndex } from '../src/attestation-check.js';
import { parseLog } from '../src/measurement-event.js';
import { MeasurementLog } from '../src/measurement-log.js';
import { parseAttest, pcrDigestOf } from '../src/quote-file.js';
import { ALG_SHA1, ALG_SHA256, attestBytes } from './attest-bytes.js';

const NONCE = Buffer.from('c0ffee', 'hex');
const A: ExpectedIndex = {
  digest: `sha256:${'aa'.repeat(32)}`,
  name: 'debian',
  blocks: new Set(['11'.repeat(20), '22'.repeat(20), '33'.repeat(20)]),
  source: 'debian.idx',
};
const B: ExpectedIndex = {
  digest: `sha256:${'bb'.repeat(32)}`,
  name: 'tools',
  blocks: new Set(['44'.repeat(20)]),
  source: 'tools.idx',
};

/** An honest log of A and B with three blocks, and the quote a TPM that measured it would give. */
function honest() {
  const log = new MeasurementLog({}, { pcr: 23 });
  void log.measureIndex(A.digest, 'debian', '0123456789abcdef');
  void log.measureIndex(B.digest, 'tools', undefined);
  void log.measureBlock(A.digest, '22'.repeat(20));
  void log.measureBlock(B.digest, '44'.repeat(20));
  void log.measureBlock(A.digest, '11'.repeat(20));
  return { text: log.text(), quote: quoteOf(log) };
}

function quoteOf(log: MeasurementLog, nonce = NONCE): ReturnType<typeof parseAttest> {
  const v = log.pcrValues();
  const selection = [
    { alg: ALG_SHA1, pcrs: [log.pcr] },
    { alg: ALG_SHA256, pcrs: [log.pcr] },
  ];
  const shape = parseAttest(attestBytes({ nonce, selection, pcrDigest: Buffer.alloc(32) }));
  const pcrDigest = pcrDigestOf(shape.selection, (bank) => Buffer.from(v[bank as 'sha1' | 'sha256'], 'hex'));
  return parseAttest(attestBytes({ nonce, selection, pcrDigest: pcrDigest as Buffer }));
}

const check = (text: string, attest = honest().quote, expected = [A, B], nonce = NONCE) =>
  checkAttestation({ entries: parseLog(text), attest, nonce, expected });

const lines = (text: string) => text.trimEnd().split('\n');
const join = (ls: string[]) => `${ls.join('\n')}\n`;

describe('checkAttestation', () => {
  it('an honest log, quote and expectation agree', () => {
    const { text } = honest();
    const r = check(text);
    expect(r).toMatchObject({
      ok: true,
      pcr: 23,
      banks: ['sha1', 'sha256'],
      quotedEntries: 5,
      unquotedEntries: 0,
      blocks: 3,
    });
    expect(r.indexes.map((i) => [i.image, i.keyId, i.expected])).toEqual([
      ['debian', '0123456789abcdef', true],
      ['tools', '-', true],
    ]);
    expect(r.problems).toEqual([]);
  });

  /** A consistent forgery of line 5: another block of A, with its own correct template digest. */
  function changedLine(): string {
    const other = new MeasurementLog({}, { pcr: 23 });
    void other.measureBlock(A.digest, '33'.repeat(20));
    return other.text().trimEnd();
  }

  it.each([
    ['changed', (ls: string[]) => [...ls.slice(0, 4), changedLine()]],
    ['removed', (ls: string[]) => [ls[0], ls[1], ls[3], ls[4]]],
    ['removed at the end', (ls: string[]) => ls.slice(0, 4)],
    ['reordered', (ls: string[]) => [ls[1], ls[0], ls[2], ls[3], ls[4]]],
  ])('a log with one entry %s fails: it no longer replays to the quote', (_what, edit) => {
    const r = check(join(edit(lines(honest().text)) as string[]));
    expect(r.ok).toBe(false);
    expect(r.quotedEntries).toBeNull();
    expect(r.problems.join('\n')).toMatch(/does not replay to the quoted PCR 23 \(sha1\+sha256\)/);
  });

  it('entries logged after the quote are reported, not trusted', () => {
    const { text, quote } = honest();
    const more = new MeasurementLog({}, { pcr: 23 });
    void more.measureBlock(A.digest, '33'.repeat(20));
    const r = check(text + more.text(), quote);
    expect(r).toMatchObject({ ok: true, quotedEntries: 5, unquotedEntries: 1 });
  });

  it('an index the verifier did not expect fails, naming it', () => {
    const r = check(honest().text, undefined, [A]);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([`log line 2: index tools ${B.digest} is not one of the expected indexes`]);
    expect(r.indexes.find((i) => i.image === 'tools')?.expected).toBe(false);
  });

  it('an expected digest logged under another name fails', () => {
    const r = check(honest().text, undefined, [A, { ...B, name: 'renamed' }]);
    expect(r.problems).toEqual([`log line 2: index ${B.digest} is renamed (tools.idx), but logged as tools`]);
  });

  it('a block that is not in its index, or whose index was not measured before it, fails', () => {
    const log = new MeasurementLog({}, { pcr: 23 });
    void log.measureBlock(A.digest, '11'.repeat(20));
    void log.measureIndex(A.digest, 'debian', undefined);
    void log.measureBlock(A.digest, '99'.repeat(20));
    const r = check(log.text(), quoteOf(log));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      `log line 1: block ${'11'.repeat(20)} of index ${A.digest}, which was not measured before it`,
      `log line 3: block ${'99'.repeat(20)} is not a block of debian (debian.idx)`,
    ]);
  });

  it('a quote with another nonce fails (a replayed quote)', () => {
    const r = check(honest().text, undefined, [A, B], Buffer.from('beef', 'hex'));
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/binds nonce c0ffee, not the expected one/);
  });

  it('a quote of another PCR, or of several, fails', () => {
    const log = new MeasurementLog({}, { pcr: 16 });
    void log.measureIndex(A.digest, 'debian', undefined);
    const r = check(honest().text, quoteOf(log));
    expect(r.problems.join('\n')).toMatch(/extends PCR 23, not the quoted PCR 16/);
    const several = parseAttest(
      attestBytes({ nonce: NONCE, selection: [{ alg: ALG_SHA256, pcrs: [16, 23] }], pcrDigest: Buffer.alloc(32) }),
    );
    expect(check(honest().text, several).problems).toEqual([
      'the quote must select exactly one PCR; it selects 16, 23',
    ]);
  });

  it('the empty log matches a quote of a PCR still at zero', () => {
    const log = new MeasurementLog({}, { pcr: 23 });
    expect(check('', quoteOf(log))).toMatchObject({ ok: true, quotedEntries: 0 });
  });
});
