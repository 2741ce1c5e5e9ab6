import { BlockCorruptError, BlockNotFoundError, type BlockRef, MirrorUnavailableError } from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';
import { currentPriority, type FetchOptions, VerifiedSource, verified } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskCache } from '../src/io/disk-cache.js';
import { WriteBehind } from '../src/io/write-behind.js';
import { type CacheCounters, CachedReader } from '../src/sources/cached-reader.js';
import { CheckedReader } from '../src/sources/checked-reader.js';
import { NoCacheReader } from '../src/sources/no-cache-reader.js';
import {
  corrupted,
  deferred,
  FakeLocal,
  makeBlock,
  RecordingSource,
  readWhole,
  type TestBlock,
  tempDir,
} from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function setup() {
  const local = new FakeLocal();
  const remote = new FakeSource('remote');
  const stored: string[] = [];
  const counters: CacheCounters = { hits: 0, fetched: 0, bytesFetched: 0, onStored: (id) => stored.push(id) };
  const cached = new CachedReader({ local, remote: verified(remote), counters });
  return { local, remote, counters, stored, cached };
}

/** Holds every remote get until `release()`. */
function gateRemote(remote: FakeSource) {
  const gate = deferred();
  remote.onGet = async () => {
    await gate.promise;
    return undefined;
  };
  return { release: () => gate.resolve() };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

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

describe('CachedReader reads', () => {
  it('a miss is fetched, decoded and kept locally; the next read is a local hit', async () => {
    const { local, remote, counters, stored, cached } = setup();
    const b = makeBlock(1);
    expect(b.ref.codec).toBe('zstd');
    remote.blocks.set(b.ref.id, b.stored);

    const dst = new Uint8Array(b.ref.size);
    const whole = await cached.read(b.ref, dst, 0, 0, b.ref.size);
    expect(same(dst, b.data)).toBe(true);
    expect(whole).toBeUndefined(); // the local cache has it in hand: nothing for a cache above to keep
    expect(remote.calls).toEqual([b.ref.id]);
    await settle();
    expect(local.kept).toEqual([b.ref.id]);
    expect(stored).toEqual([b.ref.id]);
    expect(counters).toMatchObject({ hits: 0, fetched: 1, bytesFetched: b.stored.length });

    expect(await cached.read(b.ref, dst, 0, 0, b.ref.size)).toBeUndefined();
    expect(remote.calls).toHaveLength(1);
    expect(local.reads).toEqual([b.ref.id]);
    expect(counters).toMatchObject({ hits: 1, fetched: 1, bytesFetched: b.stored.length });
  });

  it('hands a fetched block up whole when the local cache does not keep it (--nocache)', async () => {
    const remote = new FakeSource('remote');
    const b = makeBlock(30);
    remote.blocks.set(b.ref.id, b.stored);
    const cached = new CachedReader({ local: new NoCacheReader(), remote: verified(remote) });
    const whole = await cached.read(b.ref, new Uint8Array(10), 0, 0, 10);
    expect(whole && same(whole, b.data)).toBe(true);
    const loaded = await cached.load(b.ref, { priority: 'background' });
    expect(loaded && same(loaded, b.data)).toBe(true);
  });

  it('copies exactly the slice asked for, at the offset asked for', async () => {
    const { remote, local, cached } = setup();
    const b = makeBlock(2);
    remote.blocks.set(b.ref.id, b.stored);
    for (const round of ['fetched', 'local']) {
      const dst = new Uint8Array(1000).fill(0xaa);
      await cached.read(b.ref, dst, 100, 3000, 500);
      expect(same(dst.subarray(100, 600), b.data.subarray(3000, 3500)), round).toBe(true);
      expect(dst.subarray(0, 100).every((x) => x === 0xaa)).toBe(true);
      expect(dst.subarray(600).every((x) => x === 0xaa)).toBe(true);
      await settle();
    }
    expect(local.reads).toHaveLength(1);
  });

  it('works without counters', async () => {
    const local = new FakeLocal();
    const remote = new FakeSource('remote');
    const b = makeBlock(3);
    remote.blocks.set(b.ref.id, b.stored);
    const cached = new CachedReader({ local, remote: verified(remote) });
    expect(same(await readWhole(cached, b.ref), b.data)).toBe(true);
    await settle();
    expect(same(await readWhole(cached, b.ref), b.data)).toBe(true);
    expect(remote.calls).toHaveLength(1);
  });

  it('many concurrent reads of one block make exactly one remote get', async () => {
    const { remote, counters, cached } = setup();
    const b = makeBlock(4);
    remote.blocks.set(b.ref.id, b.stored);
    const { release } = gateRemote(remote);
    const reads = Array.from({ length: 10 }, () => readWhole(cached, b.ref));
    await settle();
    release();
    for (const r of await Promise.all(reads)) expect(same(r, b.data)).toBe(true);
    expect(remote.calls).toEqual([b.ref.id]);
    expect(counters).toMatchObject({ hits: 0, fetched: 1 });
  });

  it('different blocks are fetched independently', async () => {
    const { remote, cached } = setup();
    const [a, b] = [makeBlock(5), makeBlock(6)];
    remote.blocks.set(a.ref.id, a.stored);
    remote.blocks.set(b.ref.id, b.stored);
    const [ra, rb] = await Promise.all([readWhole(cached, a.ref), readWhole(cached, b.ref)]);
    expect(same(ra, a.data) && same(rb, b.data)).toBe(true);
    expect([...remote.calls].sort()).toEqual([a.ref.id, b.ref.id].sort());
  });

  it('the caller that started the fetch aborting does not fail the others, and its buffer is never written', async () => {
    const { local, remote, cached } = setup();
    const b = makeBlock(7);
    remote.blocks.set(b.ref.id, b.stored);
    const { release } = gateRemote(remote);
    const first = new AbortController();
    const dst1 = new Uint8Array(b.ref.size).fill(0xaa);
    const p1 = cached.read(b.ref, dst1, 0, 0, b.ref.size, { signal: first.signal });
    const p2 = readWhole(cached, b.ref);
    const p3 = readWhole(cached, b.ref, { signal: new AbortController().signal });
    await settle();
    first.abort(new Error('reader went away'));
    expect(await outcome(p1)).toBe('reader went away');
    release();
    expect(same(await p2, b.data) && same(await p3, b.data)).toBe(true);
    expect(dst1.every((x) => x === 0xaa)).toBe(true); // the FUSE buffer of an answered request stays untouched
    expect(remote.calls).toHaveLength(1);
    await settle();
    expect(local.kept).toEqual([b.ref.id]); // the shared fetch finished and was kept
  });

  it('a caller that joined a fetch in flight stops waiting on its own abort', async () => {
    const { remote, cached } = setup();
    const b = makeBlock(8);
    remote.blocks.set(b.ref.id, b.stored);
    const { release } = gateRemote(remote);
    const p1 = readWhole(cached, b.ref);
    const joiner = new AbortController();
    const p2 = readWhole(cached, b.ref, { signal: joiner.signal });
    await settle();
    joiner.abort(new Error('joiner gave up'));
    expect(await outcome(p2)).toBe('joiner gave up'); // before the fetch is released
    release();
    expect(same(await p1, b.data)).toBe(true);
  });

  it('an already aborted signal rejects at once and fetches nothing', async () => {
    const { remote, cached } = setup();
    const b = makeBlock(9);
    remote.blocks.set(b.ref.id, b.stored);
    const ac = new AbortController();
    ac.abort(new Error('too late'));
    await expect(readWhole(cached, b.ref, { signal: ac.signal })).rejects.toThrow('too late');
    expect(remote.calls).toEqual([]);
  });

  for (const [name, make] of [
    ['MirrorUnavailableError', (_ref: BlockRef) => new MirrorUnavailableError('fake(remote)', 'down')],
    ['BlockNotFoundError', (ref: BlockRef) => new BlockNotFoundError(ref.id, 'fake(remote)')],
    ['BlockCorruptError', (ref: BlockRef) => new BlockCorruptError(ref.id, 'fake(remote)', 'bad')],
  ] as const) {
    it(`a remote ${name} passes through unchanged and nothing is kept; the next read asks again`, async () => {
      const { local, remote, counters, stored, cached } = setup();
      const b = makeBlock(10);
      const error = make(b.ref);
      remote.onGet = () => {
        throw error;
      };
      await expect(readWhole(cached, b.ref)).rejects.toBe(error);
      expect(local.kept).toEqual([]);
      expect(stored).toEqual([]);
      expect(counters).toMatchObject({ hits: 0, fetched: 0, bytesFetched: 0 });
      remote.onGet = undefined;
      remote.blocks.set(b.ref.id, b.stored);
      expect(same(await readWhole(cached, b.ref), b.data)).toBe(true);
      expect(remote.calls).toHaveLength(2);
    });
  }

  it('bytes from an unverified remote are verified here: bad bytes reject, are not kept, are not copied', async () => {
    const { local, remote, cached } = setup();
    const b = makeBlock(11);
    remote.blocks.set(b.ref.id, corrupted(b.stored));
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    await expect(cached.read(b.ref, dst, 0, 0, b.ref.size)).rejects.toBeInstanceOf(BlockCorruptError);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(local.kept).toEqual([]);
  });

  it('every waiter on a failed fetch gets the error', async () => {
    const { remote, cached } = setup();
    const b = makeBlock(12);
    const gate = deferred();
    remote.onGet = async () => {
      await gate.promise;
      throw new MirrorUnavailableError('fake(remote)', 'down');
    };
    const reads = [1, 2, 3].map(() => readWhole(cached, b.ref).catch((e: unknown) => e));
    gate.resolve();
    for (const e of await Promise.all(reads)) expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect(remote.calls).toHaveLength(1);
  });

  for (const [name, error] of [
    ['cannot answer', new MirrorUnavailableError('fake(local)', 'I/O error')],
    ['finds the entry gone (corrupt and dropped)', new BlockNotFoundError('x', 'fake(local)')],
  ] as const) {
    it(`a local cache that ${name} is a miss: the block is fetched`, async () => {
      const { local, remote, cached } = setup();
      const b = makeBlock(13);
      remote.blocks.set(b.ref.id, b.stored);
      local.blocks.set(b.ref.id, b.data);
      local.onRead = () => {
        throw error;
      };
      expect(same(await readWhole(cached, b.ref), b.data)).toBe(true);
      expect(remote.calls).toEqual([b.ref.id]);
    });
  }

  it('passes the caller’s priority to the remote', async () => {
    const local = new FakeLocal();
    const remote = new RecordingSource(new FakeSource('remote'));
    const b = makeBlock(14);
    (remote.inner as FakeSource).blocks.set(b.ref.id, b.stored);
    const cached = new CachedReader({ local, remote: verified(remote) });
    await cached.load(b.ref, { priority: 'background' });
    expect(remote.gets.map((g) => g.priority)).toEqual(['background']);
  });

  it('only verified bytes reach the disk: a mirror serving bad bytes poisons nothing', async () => {
    const t = await tempDir('thfc-cached-');
    cleanups.push(t.cleanup);
    const disk = new DiskCache({}, { dir: t.dir });
    const writer = new WriteBehind({ sink: disk });
    const local = new CheckedReader({ disk, writer });
    const mirror = new FakeSource('evil');
    const b = makeBlock(15);
    const other = makeBlock(16);
    const counters: CacheCounters = { hits: 0, fetched: 0, bytesFetched: 0 };
    const cached = new CachedReader({ local, remote: new VerifiedSource({ source: mirror }), counters });

    mirror.blocks.set(b.ref.id, corrupted(b.stored));
    await expect(readWhole(cached, b.ref)).rejects.toBeInstanceOf(BlockCorruptError);
    mirror.blocks.set(b.ref.id, other.stored); // another block's bytes, same length
    await expect(readWhole(cached, b.ref)).rejects.toBeInstanceOf(BlockCorruptError);
    mirror.blocks.set(b.ref.id, b.stored.subarray(1)); // short
    await expect(readWhole(cached, b.ref)).rejects.toBeInstanceOf(BlockCorruptError);
    await writer.idle();
    expect(disk.blocks).toBe(0);
    expect(counters.fetched).toBe(0);

    // The mirror is repaired: now the block is cached, decoded.
    mirror.blocks.set(b.ref.id, b.stored);
    expect(same(await readWhole(cached, b.ref), b.data)).toBe(true);
    await writer.idle();
    expect(disk.holds(b.ref.id, b.ref.size)).toBe(true);
  });

  it('toString prints both sides', () => {
    expect(String(setup().cached)).toBe('cached(fake(local), verified(fake(remote)))');
  });
});

describe('CachedReader.load', () => {
  it('fetches at background priority and resolves only once the block is kept (read-ahead never outruns the disk)', async () => {
    const { local, remote, cached } = setup();
    const b = makeBlock(20);
    remote.blocks.set(b.ref.id, b.stored);
    const gate = deferred();
    local.gateKeep = gate.promise;
    // FakeLocal.load answers for held blocks only; make holds() true while the keep is in flight, like the write-behind.
    const keeping = new Set<string>();
    const keep = local.keep.bind(local);
    local.keep = (ref, data) => {
      keeping.add(ref.id);
      return keep(ref, data).finally(() => keeping.delete(ref.id));
    };
    local.holds = (ref) => keeping.has(ref.id) || local.blocks.has(ref.id);
    local.load = async (ref) => {
      while (keeping.has(ref.id)) await settle();
      return undefined;
    };
    const loading = cached.load(b.ref, { priority: 'background' });
    expect(await outcome(loading)).toBe('still waiting');
    gate.resolve();
    expect(await loading).toBeUndefined(); // kept locally, so not handed up
    expect(local.blocks.has(b.ref.id)).toBe(true);
  });

  it('a block held locally is loaded from the local cache, not fetched', async () => {
    const { local, remote, cached } = setup();
    const b = makeBlock(21);
    local.blocks.set(b.ref.id, b.data);
    expect(await cached.load(b.ref, { priority: 'background' })).toBeUndefined();
    expect(remote.calls).toEqual([]);
  });
});

describe('CachedReader priority', () => {
  /** A mirror whose background queue never moves: a background request waits there until its urgency is raised. */
  function stuckQueue(b: TestBlock) {
    const calls: string[] = [];
    const remote = {
      async get(_ref: BlockRef, o?: FetchOptions) {
        calls.push(currentPriority(o));
        if (currentPriority(o) === 'background') {
          await new Promise<void>((resolve) => o?.urgency?.onRaise(resolve));
        }
        return b.stored;
      },
      async has() {
        return true;
      },
      toString: () => 'stuck-queue',
    };
    return { calls, remote };
  }

  it('a demand read raises a queued background fetch of the same block: one request, served at once', async () => {
    const local = new FakeLocal();
    const b = makeBlock(22);
    const { calls, remote } = stuckQueue(b);
    const cached = new CachedReader({ local, remote: verified(remote) });
    const ahead = cached.load(b.ref, { priority: 'background' });
    await settle(); // the background request now sits in the mirror's queue
    expect(await outcome(ahead)).toBe('still waiting');
    expect(same(await readWhole(cached, b.ref, { priority: 'demand' }), b.data)).toBe(true);
    await ahead; // the read-ahead is served by the same fetch
    expect(calls).toEqual(['background']); // raised in place: no second download
  });

  it('another background caller does not raise it', async () => {
    const local = new FakeLocal();
    const b = makeBlock(23);
    const { calls, remote } = stuckQueue(b);
    const cached = new CachedReader({ local, remote: verified(remote) });
    const first = cached.load(b.ref, { priority: 'background' });
    const second = cached.load(b.ref, { priority: 'background' });
    await settle();
    expect(await outcome(second)).toBe('still waiting');
    await readWhole(cached, b.ref); // demand
    await Promise.all([first, second]);
    expect(calls).toEqual(['background']);
  });
});
