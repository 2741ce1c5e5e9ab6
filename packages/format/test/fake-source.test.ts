import { describe, expect, it } from 'vitest';
import { BlockNotFoundError } from '../src/errors.js';
import { blockSourceContract, sampleBlock } from '../src/testing/block-source-contract.js';
import { FakeSource } from '../src/testing/fake-source.js';
import { decodeVerified } from '../src/verify-block.js';

blockSourceContract('FakeSource', async () => new FakeSource(), { describe, it, expect });

describe('sampleBlock', () => {
  it('makes distinct, verifiable blocks', () => {
    const a = sampleBlock(1);
    const b = sampleBlock(2);
    expect(a.ref.id).not.toBe(b.ref.id);
    expect(a.ref.size).toBe(4096);
    expect(a.ref.storedSize).toBe(a.stored.length);
    expect(Buffer.from(decodeVerified(a.ref, a.stored, 'sample')).equals(Buffer.from(a.data))).toBe(true);
  });
});

describe('FakeSource', () => {
  it('records the ids it was asked for', async () => {
    const s = new FakeSource();
    const { ref, stored } = sampleBlock(1);
    await s.put(ref, stored);
    await s.get(ref);
    await expect(s.get(sampleBlock(2).ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(s.calls).toEqual([ref.id, sampleBlock(2).ref.id]);
  });

  it('serves what onGet returns instead of the map', async () => {
    const s = new FakeSource();
    const { ref, stored } = sampleBlock(1);
    await s.put(ref, stored);
    const other = new Uint8Array([1, 2, 3]);
    s.onGet = () => other;
    expect(await s.get(ref)).toBe(other);
    s.onGet = () => undefined;
    expect(await s.get(ref)).toBe(stored);
  });

  it('lets onGet stage a fault', async () => {
    const s = new FakeSource('a');
    s.onGet = async () => {
      throw new Error('boom');
    };
    await expect(s.get(sampleBlock(1).ref)).rejects.toThrow('boom');
  });

  it('keeps the first bytes put under an id', async () => {
    const s = new FakeSource();
    const { ref, stored } = sampleBlock(1);
    await s.put(ref, stored);
    await s.put(ref, new Uint8Array([9]));
    expect(await s.get(ref)).toBe(stored);
  });

  it('rejects with the signal reason once aborted, for get, has and put', async () => {
    const s = new FakeSource();
    const { ref, stored } = sampleBlock(1);
    const ac = new AbortController();
    const reason = new Error('stop');
    ac.abort(reason);
    await expect(s.get(ref, { signal: ac.signal })).rejects.toBe(reason);
    await expect(s.has(ref, { signal: ac.signal })).rejects.toBe(reason);
    await expect(s.put(ref, stored, { signal: ac.signal })).rejects.toBe(reason);
    expect(s.blocks.size).toBe(0);
  });

  it('names itself', () => {
    expect(String(new FakeSource('mirror-1'))).toBe('fake(mirror-1)');
    expect(String(new FakeSource())).toBe('fake(fake)');
  });
});
