import { describe, expect, it } from 'vitest';
import { chooseVia } from '../src/via.js';

describe('chooseVia', () => {
  it('auto: NBD without a usable /dev/fuse or without root, FUSE with both; an explicit choice stands', () => {
    expect(chooseVia('auto', { fuse: false, root: true }).via).toBe('nbd');
    expect(chooseVia('auto', { fuse: true, root: false }).via).toBe('nbd');
    expect(chooseVia('auto', { fuse: true, root: true }).via).toBe('fuse');
    expect(chooseVia('nbd', { fuse: true, root: true })).toEqual({ via: 'nbd', reason: 'nbd (asked for)' });
    expect(chooseVia('fuse', { fuse: false, root: false }).via).toBe('fuse');
  });
});
