import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlockIdTable } from '../src/block-id-table.js';

/** n raw sha1 ids in one array; id k is the digest of k, so equal k gives equal ids. */
function rawIds(keys: readonly number[]): Uint8Array {
  const out = new Uint8Array(keys.length * 20);
  keys.forEach((k, i) => {
    out.set(createHash('sha1').update(String(k)).digest(), i * 20);
  });
  return out;
}

function table(keys: readonly (number | null)[]): BlockIdTable {
  const ids = rawIds(keys.map((k) => k ?? -1));
  return new BlockIdTable(
    ids,
    20,
    Uint8Array.from(keys, (k) => (k === null ? 0 : 2)),
    Uint32Array.from(keys, (_, i) => 100 + i),
  );
}

describe('BlockIdTable', () => {
  it('marks the first block of each id and counts distinct ids and their stored bytes', () => {
    const t = table([7, null, 8, 7, 9, 8, null]);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => t.isFirst(i))).toEqual([true, false, true, false, true, false, false]);
    expect(t.size).toBe(3);
    expect(t.storedBytes).toBe(100 + 102 + 104);
  });

  it('finds the first block of an id, and -1 for an id it does not hold or a short input', () => {
    const t = table([7, null, 8, 7]);
    const ids = rawIds([8, 7, 12345]);
    expect(t.find(ids, 0)).toBe(2);
    expect(t.find(ids, 20)).toBe(0);
    expect(t.find(ids, 40)).toBe(-1);
    expect(t.find(ids.subarray(0, 19))).toBe(-1);
  });

  it('does not take a zero block for an id, even with the same bytes in its slot of the ids', () => {
    const t = table([null, 7]);
    expect(t.find(rawIds([-1]))).toBe(-1);
    expect(t.find(rawIds([7]))).toBe(1);
  });

  it('holds 50,000 ids at its load factor: every id found at its first block, each duplicate not first', () => {
    const keys = Array.from({ length: 60_000 }, (_, i) => (i < 50_000 ? i : i - 50_000));
    const t = table(keys);
    expect(t.size).toBe(50_000);
    const ids = rawIds(keys);
    for (let i = 0; i < keys.length; i += 7) {
      expect(t.find(ids, i * 20)).toBe(i < 50_000 ? i : i - 50_000);
      expect(t.isFirst(i)).toBe(i < 50_000);
    }
  });

  it('works for an index with no ids at all', () => {
    const t = table([null, null]);
    expect(t.size).toBe(0);
    expect(t.find(rawIds([1]))).toBe(-1);
  });
});
