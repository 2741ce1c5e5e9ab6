import { BlockCorruptError, BlockNotFoundError, type BlockRef, MirrorUnavailableError } from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type CacheCounters, CachedSource, raceAbort } from '../src/sources/cached.js';
import { DiskCache } from '../src/sources/disk-cache.js';
import { VerifiedSource } from '../src/sources/verified.js';
import { corrupted, deferred, makeBlock, RecordingSource, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function setup() {
  const cache = new FakeSource('cache');
  const remote = new FakeSource('remote');
  const stored: string[] = [];
  const counters: CacheCounters = { hits: 0, fetched: 0, bytesFetched: 0, onStored: (id) => stored.push(id) };
  const cached = new CachedSource({ cache, remote, counters });
  return { cache, remote, counters, stored, cached };
}

/** Holds every remote get until `release()`; counts how many started. */
function gateRemote(remote: FakeSource) {
  const gate = deferred();
  remote.onGet = async () => {
    await gate.promise;
    return undefined;
  };
  return { release: () => gate.resolve() };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** How `p` settles within a short while: its value, its error's message, or 'still waiting'. */
function outcome(p: Promise<unknown>): Promise<unknown> {
  return Promise.race([
    p.then(
      (v) => v,
      (e: Error) => e.message,
    ),
    settle().then(() => 'still waiting'),
  ]);
}

describe('CachedSource', () => {
  it('a miss is fetched from the remote and put in the cache; the next get is a hit', async () => {
    const { cache, remote, counters, stored, cached } = setup();
    const b = makeBlock(1);
    remote.blocks.set(b.ref.id, b.stored);

    expect(await cached.get(b.ref)).toBe(b.stored);
    expect(remote.calls).toEqual([b.ref.id]);
    expect(cache.blocks.get(b.ref.id)).toBe(b.stored);
    expect(stored).toEqual([b.ref.id]);
    expect(counters).toMatchObject({ hits: 0, fetched: 1, bytesFetched: b.stored.length });

    expect(await cached.get(b.ref)).toBe(b.stored);
    expect(remote.calls).toHaveLength(1);
    expect(cache.calls).toEqual([b.ref.id, b.ref.id]);
    expect(counters).toMatchObject({ hits: 1, fetched: 1, bytesFetched: b.stored.length });
    expect(stored).toHaveLength(1);
  });

  it('works without counters', async () => {
    const cache = new FakeSource('cache');
    const remote = new FakeSource('remote');
    const b = makeBlock(2);
    remote.blocks.set(b.ref.id, b.stored);
    const cached = new CachedSource({ cache, remote });
    expect(await cached.get(b.ref)).toBe(b.stored);
    expect(await cached.get(b.ref)).toBe(b.stored);
    expect(remote.calls).toHaveLength(1);
  });

  it('many concurrent gets of one block make exactly one remote get', async () => {
    const { cache, remote, counters, cached } = setup();
    const b = makeBlock(3);
    remote.blocks.set(b.ref.id, b.stored);
    const { release } = gateRemote(remote);
    const gets = Array.from({ length: 10 }, () => cached.get(b.ref));
    await settle();
    release();
    const results = await Promise.all(gets);
    for (const r of results) expect(r).toBe(b.stored);
    expect(remote.calls).toEqual([b.ref.id]);
    expect(cache.calls).toEqual([b.ref.id]);
    expect(counters).toMatchObject({ hits: 0, fetched: 1 });
    // Once settled the block is no longer in flight: a later get is a plain cache hit.
    await cached.get(b.ref);
    expect(remote.calls).toHaveLength(1);
    expect(counters.hits).toBe(1);
  });

  it('different blocks are fetched independently', async () => {
    const { remote, cached } = setup();
    const a = makeBlock(4);
    const b = makeBlock(5);
    remote.blocks.set(a.ref.id, a.stored);
    remote.blocks.set(b.ref.id, b.stored);
    const [ra, rb] = await Promise.all([cached.get(a.ref), cached.get(b.ref)]);
    expect(ra).toBe(a.stored);
    expect(rb).toBe(b.stored);
    expect([...remote.calls].sort()).toEqual([a.ref.id, b.ref.id].sort());
  });

  it('the caller that started the fetch aborting does not fail the others', async () => {
    const { cache, remote, cached } = setup();
    const b = makeBlock(6);
    remote.blocks.set(b.ref.id, b.stored);
    const { release } = gateRemote(remote);
    const first = new AbortController();
    const p1 = cached.get(b.ref, { signal: first.signal });
    const p2 = cached.get(b.ref);
    const p3 = cached.get(b.ref, { signal: new AbortController().signal });
    await settle();
    first.abort(new Error('reader went away'));
    expect(await outcome(p1)).toBe('reader went away');
    release();
    expect(await p2).toBe(b.stored);
    expect(await p3).toBe(b.stored);
    expect(remote.calls).toHaveLength(1);
    expect(cache.blocks.has(b.ref.id)).toBe(true); // the shared fetch finished and was cached
  });

  it('a caller that joined a fetch in flight stops waiting on its own abort', async () => {
    const { remote, cached } = setup();
    const b = makeBlock(7);
    remote.blocks.set(b.ref.id, b.stored);
    const { release } = gateRemote(remote);
    const p1 = cached.get(b.ref);
    const joiner = new AbortController();
    const p2 = cached.get(b.ref, { signal: joiner.signal });
    await settle();
    joiner.abort(new Error('joiner gave up'));
    // Rejected before the fetch is released: it does not wait for the shared fetch.
    expect(await outcome(p2)).toBe('joiner gave up');
    release();
    expect(await p1).toBe(b.stored);
  });

  it('an already aborted signal rejects at once and fetches nothing', async () => {
    const { remote, cached } = setup();
    const b = makeBlock(8);
    remote.blocks.set(b.ref.id, b.stored);
    const ac = new AbortController();
    ac.abort(new Error('too late'));
    await expect(cached.get(b.ref, { signal: ac.signal })).rejects.toThrow('too late');
    expect(remote.calls).toEqual([]);
  });

  for (const [name, make] of [
    ['MirrorUnavailableError', (_ref: BlockRef) => new MirrorUnavailableError('fake(remote)', 'down')],
    ['BlockNotFoundError', (ref: BlockRef) => new BlockNotFoundError(ref.id, 'fake(remote)')],
    ['BlockCorruptError', (ref: BlockRef) => new BlockCorruptError(ref.id, 'fake(remote)', 'bad')],
  ] as const) {
    it(`a remote ${name} passes through unchanged and nothing is cached; the next get asks again`, async () => {
      const { cache, remote, counters, stored, cached } = setup();
      const b = makeBlock(9);
      const error = make(b.ref);
      remote.onGet = () => {
        throw error;
      };
      await expect(cached.get(b.ref)).rejects.toBe(error);
      expect(cache.blocks.size).toBe(0);
      expect(stored).toEqual([]);
      expect(counters).toMatchObject({ hits: 0, fetched: 0, bytesFetched: 0 });
      remote.onGet = undefined;
      remote.blocks.set(b.ref.id, b.stored);
      expect(await cached.get(b.ref)).toBe(b.stored);
      expect(remote.calls).toHaveLength(2);
    });
  }

  it('every waiter on a failed fetch gets the error', async () => {
    const { remote, cached } = setup();
    const b = makeBlock(10);
    const gate = deferred();
    remote.onGet = async () => {
      await gate.promise;
      throw new MirrorUnavailableError('fake(remote)', 'down');
    };
    const gets = [cached.get(b.ref), cached.get(b.ref), cached.get(b.ref)].map((p) => p.catch((e: unknown) => e));
    gate.resolve();
    for (const e of await Promise.all(gets)) expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect(remote.calls).toHaveLength(1);
  });

  it('a cache that cannot answer is treated as a miss', async () => {
    const { cache, remote, cached } = setup();
    const b = makeBlock(11);
    remote.blocks.set(b.ref.id, b.stored);
    cache.onGet = () => {
      throw new MirrorUnavailableError('fake(cache)', 'I/O error');
    };
    expect(await cached.get(b.ref)).toBe(b.stored);
    expect(remote.calls).toEqual([b.ref.id]);
  });

  it('only verified bytes reach the cache: a remote serving bad bytes poisons nothing', async () => {
    const t = await tempDir('thfc-cached-');
    cleanups.push(t.cleanup);
    const disk = new DiskCache({}, { dir: t.dir });
    const mirror = new FakeSource('evil');
    const b = makeBlock(12);
    const other = makeBlock(13);
    const counters: CacheCounters = { hits: 0, fetched: 0, bytesFetched: 0 };
    const cached = new CachedSource({ cache: disk, remote: new VerifiedSource({ source: mirror }), counters });

    mirror.blocks.set(b.ref.id, corrupted(b.stored));
    await expect(cached.get(b.ref)).rejects.toBeInstanceOf(BlockCorruptError);
    mirror.blocks.set(b.ref.id, other.stored); // another block's bytes, same length
    await expect(cached.get(b.ref)).rejects.toBeInstanceOf(BlockCorruptError);
    mirror.blocks.set(b.ref.id, b.stored.subarray(1)); // short
    await expect(cached.get(b.ref)).rejects.toBeInstanceOf(BlockCorruptError);

    expect(disk.blocks).toBe(0);
    expect(await disk.has(b.ref)).toBe(false);
    await expect(disk.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(counters.fetched).toBe(0);

    // The mirror is repaired: now the block is cached.
    mirror.blocks.set(b.ref.id, b.stored);
    expect(Buffer.from(await cached.get(b.ref)).equals(Buffer.from(b.stored))).toBe(true);
    expect(disk.holds(b.ref.id)).toBe(true);
  });

  it('passes the caller’s priority to the cache and the remote', async () => {
    const cache = new FakeSource('cache');
    const remote = new FakeSource('remote');
    const b = makeBlock(14);
    remote.blocks.set(b.ref.id, b.stored);
    const recCache = new RecordingSource(cache);
    const recRemote = new RecordingSource(remote);
    const cached = new CachedSource({
      cache: Object.assign(recCache, { put: cache.put.bind(cache) }),
      remote: recRemote,
    });
    await cached.get(b.ref, { priority: 'background' });
    expect(recCache.gets.map((g) => g.priority)).toEqual(['background']);
    expect(recRemote.gets.map((g) => g.priority)).toEqual(['background']);
  });

  it('has() is true when either the cache or the remote holds the block', async () => {
    const { cache, remote, cached } = setup();
    const [a, b, c] = [makeBlock(15), makeBlock(16), makeBlock(17)];
    cache.blocks.set(a.ref.id, a.stored);
    remote.blocks.set(b.ref.id, b.stored);
    expect(await cached.has(a.ref)).toBe(true);
    expect(await cached.has(b.ref)).toBe(true);
    expect(await cached.has(c.ref)).toBe(false);
  });

  it('toString prints both sides', () => {
    expect(String(setup().cached)).toBe('cached(fake(cache), fake(remote))');
  });
});

describe('CachedSource priority', () => {
  it('a demand read overtakes a background fetch of the same block that is stuck in a queue', async () => {
    const cache = new FakeSource('cache');
    const b = makeBlock(21);
    const calls: string[] = [];
    // A mirror whose background queue never moves: only a demand request is answered.
    const remote = {
      async get(_ref: BlockRef, o?: { signal?: AbortSignal; priority?: string }) {
        calls.push(o?.priority ?? 'demand');
        if (o?.priority === 'background') {
          return new Promise<Uint8Array>((_resolve, reject) => {
            o.signal?.addEventListener('abort', () => reject(o.signal?.reason), { once: true });
          });
        }
        return b.stored;
      },
      async has() {
        return true;
      },
      toString: () => 'stuck-queue',
    };
    const cached = new CachedSource({ cache, remote });
    const ahead = cached.get(b.ref, { priority: 'background' });
    const waiting = cached.get(b.ref, { priority: 'demand' });
    await expect(waiting).resolves.toBe(b.stored);
    await expect(ahead).resolves.toBe(b.stored); // the read-ahead caller is served by the demand fetch too
    expect(calls).toEqual(['background', 'demand']);
    expect(cache.blocks.get(b.ref.id)).toBe(b.stored);
  });
});

describe('raceAbort', () => {
  it('settles with the promise when the signal stays quiet', async () => {
    await expect(raceAbort(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(raceAbort(Promise.reject(new Error('no')), new AbortController().signal)).rejects.toThrow('no');
  });

  it('rejects with the signal’s reason on abort, before the promise settles', async () => {
    const ac = new AbortController();
    const p = raceAbort(new Promise(() => {}), ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    const aborted = new AbortController();
    aborted.abort(new Error('already'));
    await expect(raceAbort(Promise.resolve(1), aborted.signal)).rejects.toThrow('already');
  });
});
