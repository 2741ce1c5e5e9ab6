import { describe, expect, it } from 'vitest';
import { Admission } from '../src/admission.js';

describe('Admission', () => {
  it('admits up to its bound, and a slot released twice frees one place', () => {
    const a = new Admission(2);
    const s1 = a.admit();
    const s2 = a.admit();
    expect(s1 && s2).toBeTruthy();
    expect(a.admit()).toBeUndefined();
    expect(a.inflight).toBe(2);
    s1?.release();
    s1?.release();
    expect(a.inflight).toBe(1);
    const s3 = a.admit();
    expect(s3).toBeDefined();
    expect(a.admit()).toBeUndefined();
    s2?.release();
    s3?.release();
    expect(a.inflight).toBe(0);
  });

  it('resolves drained() when the last slot is released, at once when none is held', async () => {
    const a = new Admission(4);
    await a.drained();
    const s = a.admit();
    let done = false;
    const drained = a.drained().then(() => {
      done = true;
    });
    await Promise.resolve();
    expect(done).toBe(false);
    s?.release();
    await drained;
    expect(done).toBe(true);
  });
});
