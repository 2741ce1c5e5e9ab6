import { describe, expect, it } from 'vitest';
import { chooseAccel } from '../src/accel.js';
import type { ProbeResult } from '../src/kvm-probe.js';

const probe = (works: boolean, cached = false): ProbeResult => ({
  works,
  reason: works ? 'the probe guest ran under KVM' : 'KVM internal error. Suberror: 1',
  key: 'k',
  probedAt: 't',
  cached,
});

describe('chooseAccel', () => {
  it('forced choices are obeyed and never retried', () => {
    expect(chooseAccel('tcg', probe(true))).toMatchObject({ accel: 'tcg', retryWithTcg: false });
    expect(chooseAccel('kvm', probe(false))).toMatchObject({ accel: 'kvm', retryWithTcg: false });
  });
  it('auto follows the probe, and a KVM chosen automatically may fall back to TCG', () => {
    expect(chooseAccel('auto', probe(true))).toMatchObject({ accel: 'kvm', retryWithTcg: true });
    const no = chooseAccel('auto', probe(false, true));
    expect(no).toMatchObject({ accel: 'tcg', retryWithTcg: false });
    expect(no.reason).toMatch(/KVM does not work here: KVM internal error.*cached/);
  });
});
