import { type BlockRef, blockId, encodeBlock } from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';
import { verified } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import { Prefetcher } from '../src/prefetcher.js';
import { CachedReader } from '../src/sources/cached-reader.js';
import { NoCacheReader } from '../src/sources/no-cache-reader.js';

/** The blocks as the prefetcher sees them: fetched (and verified) through cached(none, source). */
function readerOf(source: FakeSource) {
  return new CachedReader({ local: new NoCacheReader(), remote: verified(source) });
}

function blocks(n: number): { refs: BlockRef[]; source: FakeSource } {
  const source = new FakeSource();
  const refs: BlockRef[] = [];
  for (let i = 0; i < n; i++) {
    const data = Buffer.alloc(8192, i + 1);
    data.write(`prefetch ${i}`);
    const enc = encodeBlock(data, { codec: 'zstd', level: 1 });
    const ref = { id: blockId(data, 'sha1'), codec: enc.codec, storedSize: enc.bytes.length, size: data.length };
    source.blocks.set(ref.id, enc.bytes);
    refs.push(ref);
  }
  return { refs, source };
}

describe('Prefetcher', () => {
  it('fetches every block in order at background priority and counts hits, waste and pending', async () => {
    const { refs, source } = blocks(6);
    const priorities: (string | undefined)[] = [];
    const inner = source.get.bind(source);
    source.get = (ref, o) => {
      priorities.push(o?.priority);
      return inner(ref, o);
    };
    const p = new Prefetcher({ blocks: readerOf(source) }, refs, { parallel: 1 });
    expect(p.status()).toMatchObject({ blocks: 6, pending: 6, fetched: 0 });
    await p.run(new AbortController().signal);
    expect(source.calls).toEqual(refs.map((r) => r.id));
    expect(new Set(priorities)).toEqual(new Set(['background']));
    p.observe(0, refs[0] as BlockRef);
    p.observe(1, refs[1] as BlockRef);
    p.observe(1, refs[1] as BlockRef); // counted once
    expect(p.status()).toMatchObject({ fetched: 6, hit: 2, wasted: 4, pending: 0, done: true });
  });

  it('skips blocks a reader already asked for', async () => {
    const { refs, source } = blocks(3);
    const p = new Prefetcher({ blocks: readerOf(source) }, refs, { parallel: 1 });
    p.observe(1, refs[1] as BlockRef);
    await p.run(new AbortController().signal);
    expect(source.calls).toEqual([refs[0]?.id, refs[2]?.id]);
  });

  it('keeps to the bandwidth cap', async () => {
    const { refs, source } = blocks(5);
    const total = refs.reduce((n, r) => n + r.storedSize, 0);
    const rate = total * 4; // the 5 blocks may take ~200 ms: the 5th is due at 4/5 of 250 ms
    const started = performance.now();
    await new Prefetcher({ blocks: readerOf(source) }, refs, { parallel: 4, bytesPerSecond: rate }).run(
      new AbortController().signal,
    );
    const ms = performance.now() - started;
    const due = ((total - (refs.at(-1)?.storedSize ?? 0)) / rate) * 1000;
    expect(ms).toBeGreaterThanOrEqual(due - 5);
  });

  it('counts failures without stopping, and an abort stops it', async () => {
    const { refs, source } = blocks(4);
    source.blocks.delete(refs[1]?.id as string);
    const p = new Prefetcher({ blocks: readerOf(source) }, refs, { parallel: 1 });
    await p.run(new AbortController().signal);
    expect(p.status()).toMatchObject({ fetched: 3, failed: 1 });
    const ac = new AbortController();
    ac.abort();
    const q = new Prefetcher({ blocks: readerOf(source) }, refs, { parallel: 2 });
    await q.run(ac.signal);
    expect(q.status()).toMatchObject({ fetched: 0, done: false });
  });
});
