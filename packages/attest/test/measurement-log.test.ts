import { describe, expect, it } from 'vitest';
import { parseLog, templateDigests } from '../src/measurement-event.js';
import { DEFAULT_MEASUREMENT_PCR, MeasurementLog, type PcrExtender } from '../src/measurement-log.js';
import { type BankDigests, replayPcr } from '../src/pcr-bank.js';

const IDX = `sha256:${'12'.repeat(32)}`;
const BLOCK = 'ab'.repeat(20);

/** A Map-and-hooks fake TPM: records what it is asked to extend; `fail` makes the next call reject. */
class FakeExtender implements PcrExtender {
  readonly calls: { pcr: number; digests: readonly BankDigests[] }[] = [];
  fail: Error | undefined;
  async extend(pcr: number, digests: readonly BankDigests[]): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    if (this.fail) throw this.fail;
    this.calls.push({ pcr, digests });
  }
  toString(): string {
    return 'fake';
  }
}

describe('MeasurementLog', () => {
  it('its text replays to its own software PCR values, in both banks', async () => {
    const log = new MeasurementLog();
    await log.measureIndex(IDX, 'debian', '0123456789abcdef');
    await log.measureBlock(IDX, BLOCK);
    await log.measureIndex(IDX, 'other', undefined);
    expect(log.length).toBe(3);
    expect(log.pcr).toBe(DEFAULT_MEASUREMENT_PCR);
    const entries = parseLog(log.text());
    expect(entries.map((e) => e.event.template)).toEqual(['thfc-index', 'thfc-block', 'thfc-index']);
    expect(entries[2]?.event).toMatchObject({ keyId: '-' });
    const v = replayPcr(entries.map((e) => templateDigests(e.event)));
    expect(log.pcrValues()).toEqual({ sha1: v.sha1.toString('hex'), sha256: v.sha256.toString('hex') });
  });

  it('hands the extender the same digests in the same order, and settles once it holds them', async () => {
    const tpm = new FakeExtender();
    const log = new MeasurementLog({ extender: tpm }, { pcr: 16 });
    const a = log.measureIndex(IDX, 'debian', undefined);
    const b = log.measureBlock(IDX, BLOCK);
    await log.settled();
    await Promise.all([a, b]);
    const entries = parseLog(log.text());
    expect(entries.every((e) => e.pcr === 16)).toBe(true);
    expect(tpm.calls.map((c) => c.pcr)).toEqual([16, 16]);
    expect(tpm.calls.map((c) => c.digests[0]?.sha256.toString('hex'))).toEqual(
      entries.map((e) => templateDigests(e.event).sha256.toString('hex')),
    );
    expect(String(log)).toBe('measurement-log(pcr 16, fake)');
  });

  it('a failed extend rejects that measurement and every later settled(), with no unhandled rejection', async () => {
    const tpm = new FakeExtender();
    const log = new MeasurementLog({ extender: tpm });
    tpm.fail = new Error('TPM gone');
    void log.measureBlock(IDX, BLOCK); // an observer does not wait
    await expect(log.settled()).rejects.toThrow('TPM gone');
    tpm.fail = undefined;
    void log.measureBlock(IDX, 'cd'.repeat(20));
    await expect(log.settled()).rejects.toThrow('TPM gone');
    expect(log.length).toBe(2); // the log still says what was used
  });

  it('refuses a malformed event before logging it', () => {
    const log = new MeasurementLog();
    expect(() => log.measureIndex('sha256:00', 'x', undefined)).toThrow(/bad index digest/);
    expect(() => log.measureBlock(IDX, 'xyz')).toThrow(/bad block/);
    expect(log.length).toBe(0);
  });
});
