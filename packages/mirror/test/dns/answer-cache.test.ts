import { describe, expect, it } from 'vitest';
import { AnswerCache } from '../../src/dns/answer-cache.js';

const query = (id: number, tail: string) => Buffer.concat([Buffer.from([id >> 8, id & 255]), Buffer.from(tail)]);
const response = (id: number, body: string) => Buffer.concat([Buffer.from([id >> 8, id & 255]), Buffer.from(body)]);

describe('AnswerCache', () => {
  it('gives back a copy of the response with the new query id, for the same bytes after the id only', () => {
    const cache = new AnswerCache();
    const epoch = {};
    const key = AnswerCache.key(query(1, 'question'), 'udp', '127.0.0.1');
    expect(AnswerCache.key(query(2, 'question'), 'udp', '127.0.0.1')).toBe(key);
    expect(cache.get(key, 1, epoch)).toBeUndefined();
    const kept = response(1, 'answer');
    cache.set(key, kept, false, epoch);
    const hit = cache.get(key, 0xbeef, epoch);
    expect(hit?.response.readUInt16BE(0)).toBe(0xbeef);
    expect(hit?.response.subarray(2).toString()).toBe('answer');
    expect(hit?.truncated).toBe(false);
    expect(kept.readUInt16BE(0)).toBe(1); // the kept bytes are not changed by a hit
    // Another question, address or transport is another entry.
    for (const other of [
      AnswerCache.key(query(1, 'questioN'), 'udp', '127.0.0.1'),
      AnswerCache.key(query(1, 'question'), 'udp', '127.0.0.2'),
      AnswerCache.key(query(1, 'question'), 'tcp', '127.0.0.1'),
    ]) {
      expect(cache.get(other, 1, epoch)).toBeUndefined();
    }
  });

  it('empties on a new epoch, and keeps at most maxEntries, the oldest going first', () => {
    const cache = new AnswerCache(2);
    const first = {};
    const keys = ['a', 'b', 'c'].map((t) => AnswerCache.key(query(0, t), 'udp', '::1'));
    cache.set(keys[0] as string, response(0, 'A'), true, first);
    expect(cache.get(keys[0] as string, 7, first)?.truncated).toBe(true);
    expect(cache.get(keys[0] as string, 7, {})).toBeUndefined();
    expect(cache.size).toBe(0);
    const second = {};
    for (const k of keys) cache.set(k, response(0, k), false, second);
    expect(cache.size).toBe(2);
    expect(cache.get(keys[0] as string, 1, second)).toBeUndefined();
    expect(cache.get(keys[2] as string, 1, second)).toBeDefined();
  });
});
