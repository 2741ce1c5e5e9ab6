import { describe, expect, it } from 'vitest';
import { bankHash, extendPcr, isPcrBank, replayPcr, zeroPcr } from '../src/pcr-bank.js';

const hex = (s: string) => Buffer.from(s, 'hex');

describe('extendPcr', () => {
  it('matches a TPM: values read back from swtpm after tpm2_pcrextend 23:sha1=…01,sha256=…01 23:sha1=…02', () => {
    let sha1 = extendPcr('sha1', zeroPcr('sha1'), hex(`${'00'.repeat(19)}01`));
    sha1 = extendPcr('sha1', sha1, hex(`${'00'.repeat(19)}02`));
    const sha256 = extendPcr('sha256', zeroPcr('sha256'), hex(`${'00'.repeat(31)}01`));
    expect(sha1.toString('hex')).toBe('18dafb219b7145df25ed0c1e0c0ba8818c442388');
    expect(sha256.toString('hex')).toBe('90f4b39548df55ad6187a1d20d731ecee78c545b94afd16f42ef7592d99cd365');
  });

  it('is H(old || digest), order-sensitive', () => {
    const a = bankHash('sha256', 'a');
    const b = bankHash('sha256', 'b');
    const ab = replayPcr([
      { sha1: bankHash('sha1', 'a'), sha256: a },
      { sha1: bankHash('sha1', 'b'), sha256: b },
    ]);
    const ba = replayPcr([
      { sha1: bankHash('sha1', 'b'), sha256: b },
      { sha1: bankHash('sha1', 'a'), sha256: a },
    ]);
    expect(ab.sha256.equals(ba.sha256)).toBe(false);
    expect(ab.sha256.equals(extendPcr('sha256', extendPcr('sha256', zeroPcr('sha256'), a), b))).toBe(true);
    expect(replayPcr([])).toEqual({ sha1: zeroPcr('sha1'), sha256: zeroPcr('sha256') });
  });

  it('knows its banks', () => {
    expect(['sha1', 'sha256', 'sha384'].map(isPcrBank)).toEqual([true, true, false]);
  });
});
