import { describe, expect, it } from 'vitest';
import { badness, DOWN_BADNESS } from '../../src/dns/badness.js';
import { record } from '../registry/registry-contract.js';

describe('badness', () => {
  it('0 idle, rising with utilisation to 4999 at capacity, capped there', () => {
    expect(badness(record({ load: 0, capacity: 100 }))).toBe(0);
    expect(badness(record({ load: 50, capacity: 100 }))).toBe(2500);
    expect(badness(record({ load: 100, capacity: 100 }))).toBe(4999);
    expect(badness(record({ load: 1000, capacity: 100 }))).toBe(4999);
  });

  it('degraded adds 5000: every degraded mirror ranks after every healthy one', () => {
    expect(badness(record({ load: 0, health: 'degraded' }))).toBe(5000);
    expect(badness(record({ load: 64, capacity: 64, health: 'degraded' }))).toBe(9999);
    expect(badness(record({ load: 0, health: 'degraded' }))).toBeGreaterThan(
      badness(record({ load: 64, capacity: 64 })),
    );
  });

  it('never reaches DOWN_BADNESS, which is reserved for mirrors left out', () => {
    expect(DOWN_BADNESS).toBe(10_000);
    expect(badness(record({ load: 1e9, capacity: 1, health: 'degraded' }))).toBeLessThan(DOWN_BADNESS);
  });
});
