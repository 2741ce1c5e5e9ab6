import { EXIT } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { exitCodeOfOutcome, VM_EXIT } from '../src/exit-codes.js';

describe('exit codes', () => {
  it('extend the shared thfc table without changing it', () => {
    for (const [k, v] of Object.entries(EXIT)) expect(VM_EXIT[k as keyof typeof EXIT]).toBe(v);
    const values = Object.values(VM_EXIT);
    expect(new Set(values).size).toBe(values.length);
  });
  it('say how the guest run ended', () => {
    expect(exitCodeOfOutcome('powered-off')).toBe(0);
    expect(exitCodeOfOutcome('interrupted')).toBe(130);
    expect(exitCodeOfOutcome('failed')).toBe(6);
  });
});
