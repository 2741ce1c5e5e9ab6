import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { drainedOrClosed } from '../src/drained-or-closed.js';

describe('drainedOrClosed', () => {
  it('resolves on drain and on close, and leaves no listener behind', async () => {
    const out = new PassThrough({ highWaterMark: 1 });
    for (let i = 0; i < 20; i++) {
      expect(out.write('xy')).toBe(false);
      const waiting = drainedOrClosed(out);
      out.read();
      await waiting;
    }
    expect(out.listenerCount('drain')).toBe(0);
    expect(out.listenerCount('close')).toBe(0);
    out.write('xy');
    const closing = drainedOrClosed(out);
    out.destroy();
    await closing;
    expect(out.listenerCount('drain')).toBe(0);
  });
});
