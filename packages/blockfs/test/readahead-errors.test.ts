import { describe, expect, it } from 'vitest';
import { countFailure, MAX_REMEMBERED_FAILURES, noteSuccess } from '../src/readahead-errors.js';

const K = 1024;
const fresh = () => ({ memory: { failed: [] as [number, number][] }, c: { readErrors: 0, readaheadErrors: 0 } });

describe('read-ahead errors apart from read errors', () => {
  it('a failure the kernel never comes back for stays a read-ahead error', () => {
    const { memory, c } = fresh();
    expect(countFailure(memory, false, 252 * K, 380 * K, c)).toBe('readahead');
    expect(c).toEqual({ readErrors: 0, readaheadErrors: 1 });
  });

  it('the kernel retrying a page of it for a reader: the retry failing is one read error, and nothing else', () => {
    const { memory, c } = fresh();
    countFailure(memory, false, 256 * K, 384 * K, c);
    expect(countFailure(memory, false, 260 * K, 264 * K, c)).toBe('read');
    expect(c).toEqual({ readErrors: 1, readaheadErrors: 0 });
  });

  it('the retry succeeding: the failure stays a read-ahead error, and is forgotten', () => {
    const { memory, c } = fresh();
    countFailure(memory, false, 252 * K, 380 * K, c);
    noteSuccess(memory, 252 * K, 256 * K);
    expect(c).toEqual({ readErrors: 0, readaheadErrors: 1 });
    expect(memory.failed).toEqual([]);
    // A later failure elsewhere is read-ahead again, not a retry.
    expect(countFailure(memory, false, 512 * K, 640 * K, c)).toBe('readahead');
  });

  it('a request that does not overlap is not a retry', () => {
    const { memory, c } = fresh();
    countFailure(memory, false, 0, 128 * K, c);
    expect(countFailure(memory, false, 128 * K, 256 * K, c)).toBe('readahead');
    expect(c).toEqual({ readErrors: 0, readaheadErrors: 2 });
  });

  it('O_DIRECT has no read-ahead: every failure is a read error', () => {
    const { memory, c } = fresh();
    expect(countFailure(memory, true, 0, 4 * K, c)).toBe('read');
    expect(c).toEqual({ readErrors: 1, readaheadErrors: 0 });
  });

  it('remembers a bounded number of failures', () => {
    const { memory, c } = fresh();
    for (let i = 0; i < 100; i++) countFailure(memory, false, i * 128 * K, (i + 1) * 128 * K, c);
    expect(memory.failed).toHaveLength(MAX_REMEMBERED_FAILURES);
    expect(c.readaheadErrors).toBe(100);
  });
});
