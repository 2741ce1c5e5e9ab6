import { describe, expect, it } from 'vitest';
import { TpmError } from '../src/errors.js';
import { bankHash, type PcrBank } from '../src/pcr-bank.js';
import type { PcrValues } from '../src/tpm.js';
import { type PcrDevice, TpmExtender } from '../src/tpm-extender.js';

/** A fake TPM: a Map of PCR values plus hooks. */
class FakeTpm implements PcrDevice {
  banks = ['sha1', 'sha256', 'sha384'];
  values = new Map<string, string>();
  runs: Partial<Record<PcrBank, Uint8Array>>[][] = [];
  gate: Promise<void> = Promise.resolve();
  failNext: Error | undefined;
  unreachable = false;
  async activeBanks(): Promise<string[]> {
    if (this.unreachable) throw new TpmError('tpm2_getcap failed: Failed to connect');
    return this.banks;
  }
  async pcrRead(pcr: number, banks: readonly PcrBank[]): Promise<PcrValues> {
    return Object.fromEntries(banks.map((b) => [b, { [pcr]: this.values.get(`${b}:${pcr}`) ?? '00'.repeat(20) }]));
  }
  async pcrExtend(_pcr: number, digests: readonly Partial<Record<PcrBank, Uint8Array>>[]): Promise<void> {
    await this.gate;
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    this.runs.push([...digests]);
  }
  toString(): string {
    return 'fake-tpm';
  }
}

const digests = (s: string) => ({ sha1: bankHash('sha1', s), sha256: bankHash('sha256', s) });

describe('TpmExtender.open', () => {
  it('extends only the banks both the log and the TPM have', async () => {
    const tpm = new FakeTpm();
    tpm.banks = ['sha256', 'sha384'];
    const x = new TpmExtender({ tpm });
    await x.open(23);
    expect(x.activeBanks).toEqual(['sha256']);
    await x.extend(23, [digests('a')]);
    expect(Object.keys(tpm.runs[0]?.[0] ?? {})).toEqual(['sha256']);
    expect(String(x)).toBe('tpm(fake-tpm, sha256)');
  });

  it('no TPM: a clear message that says the software log still works', async () => {
    const tpm = new FakeTpm();
    tpm.unreachable = true;
    await expect(new TpmExtender({ tpm }).open(23)).rejects.toThrow(
      /no TPM reachable through fake-tpm \(.*Failed to connect\); run without --tpm: the software measurement log still works/,
    );
  });

  it('refuses a PCR that already holds measurements, a PCR out of range, and a TPM without usable banks', async () => {
    const tpm = new FakeTpm();
    tpm.values.set('sha256:23', `01${'00'.repeat(31)}`);
    await expect(new TpmExtender({ tpm }).open(23)).rejects.toThrow(/PCR 23 is not zero \(sha256 01000000/);
    await expect(new TpmExtender({ tpm }).open(24)).rejects.toThrow(/not one of 0-23/);
    tpm.banks = ['sha384'];
    await expect(new TpmExtender({ tpm }).open(16)).rejects.toThrow(/neither a sha1 nor a sha256 PCR bank/);
    await expect(new TpmExtender({ tpm }).extend(16, [digests('a')])).rejects.toThrow(/before open/);
  });
});

describe('TpmExtender.extend', () => {
  it('keeps order and batches what queued while a run was in flight', async () => {
    const tpm = new FakeTpm();
    const x = new TpmExtender({ tpm }, { maxBatch: 3 });
    await x.open(23);
    let release: () => void = () => {};
    tpm.gate = new Promise((r) => {
      release = r;
    });
    const all = ['a', 'b', 'c', 'd', 'e', 'f'].map((s) => x.extend(23, [digests(s)]));
    release();
    await Promise.all(all);
    expect(tpm.runs.map((r) => r.length)).toEqual([1, 3, 2]);
    expect(tpm.runs.flat().map((d) => Buffer.from(d.sha1 ?? []).toString('hex'))).toEqual(
      ['a', 'b', 'c', 'd', 'e', 'f'].map((s) => bankHash('sha1', s).toString('hex')),
    );
  });

  it('after a failed run every later extend fails at once: the PCR no longer matches the log', async () => {
    const tpm = new FakeTpm();
    const x = new TpmExtender({ tpm });
    await x.open(23);
    tpm.failNext = new TpmError('tpm2_pcrextend failed: TPM_RC_LOCALITY');
    await expect(x.extend(23, [digests('a')])).rejects.toThrow(/extend of PCR 23 failed .*no longer matches the log/);
    await expect(x.extend(23, [digests('b')])).rejects.toThrow(/no longer matches the log/);
    expect(tpm.runs).toEqual([]);
  });
});
