import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockCorruptError, blockId } from '@thfc/format';
import { Urgency } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockWorkers } from '../src/io/block-workers.js';
import { blockOf, corrupted, makeBlock, patternBytes, rawBlock, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function workers(threads?: number): BlockWorkers {
  const w = new BlockWorkers({ threads });
  cleanups.push(() => w.close());
  return w;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
/** A copy in a buffer of its own (transferable), as HttpSource and DirStore return stored bytes. */
const copyOf = (a: Uint8Array) => Buffer.from(new Uint8Array(a).buffer);

describe('BlockWorkers.decode', () => {
  it('decodes and verifies on a worker thread, handing back the stored bytes and the block', async () => {
    const w = workers();
    const b = makeBlock(1, 256 * 1024);
    const sent = copyOf(b.stored);
    const { stored, data } = await w.decode(b.ref, sent, 'test');
    expect(Buffer.isBuffer(data)).toBe(true);
    expect(same(data, b.data)).toBe(true);
    expect(same(stored, b.stored)).toBe(true);
    expect(sent.length).toBe(0); // transferred, not copied: the caller uses what came back
  });

  it('a raw block comes back as one buffer', async () => {
    const w = workers();
    const b = rawBlock(4096);
    const { stored, data } = await w.decode(b.ref, copyOf(b.stored), 'test');
    expect(same(data, b.data)).toBe(true);
    expect(stored).toBe(data);
  });

  it('a slice of a larger buffer is copied for the trip and the caller’s buffer is left alone', async () => {
    const w = workers();
    const b = makeBlock(3);
    const pool = Buffer.concat([Buffer.alloc(100), b.stored, Buffer.alloc(100)]);
    const slice = pool.subarray(100, 100 + b.stored.length);
    const { data } = await w.decode(b.ref, slice, 'test');
    expect(same(data, b.data)).toBe(true);
    expect(pool.length).toBe(b.stored.length + 200);
  });

  it('bad bytes are BlockCorruptError naming the source and the reason, as decodeVerified says', async () => {
    const w = workers();
    const b = makeBlock(4);
    const e = await w.decode(b.ref, copyOf(corrupted(b.stored)), 'http(m)').catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as BlockCorruptError).message).toMatch(new RegExp(`^block ${b.ref.id} from http\\(m\\) is corrupt: `));
    const other = makeBlock(5);
    await expect(w.decode(b.ref, copyOf(other.stored), 'x')).rejects.toBeInstanceOf(BlockCorruptError);
    await expect(w.decode(b.ref, copyOf(b.stored.subarray(1)), 'x')).rejects.toThrow(/bytes, the index says/);
  });

  it('spreads work over its threads and keeps every answer with its question', async () => {
    const w = workers(2);
    const blocks = Array.from({ length: 20 }, (_, i) => blockOf(patternBytes(8192, 100 + i)));
    const results = await Promise.all(blocks.map((b) => w.decode(b.ref, copyOf(b.stored), 'test')));
    for (const [i, r] of results.entries()) expect(same(r.data, (blocks[i] as { data: Uint8Array }).data)).toBe(true);
  });

  it('a thread that dies fails the jobs it held, and the queued ones go to a new thread at once', async () => {
    const w = workers(1);
    const blocks = Array.from({ length: 6 }, (_, i) => blockOf(patternBytes(256 * 1024, 200 + i)));
    const jobs = blocks.map((b) =>
      w.decode(b.ref, copyOf(b.stored), 'test').then(
        (r) => same(r.data, b.data),
        (e: Error) => e.message,
      ),
    );
    // Two jobs are posted to the thread, four wait in the gate; no later job comes to make a pass.
    void (w as unknown as { threads: { worker?: { terminate(): Promise<number> } }[] }).threads[0]?.worker?.terminate();
    const settled = await Promise.race([
      Promise.all(jobs),
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5_000).unref()),
    ]);
    expect(settled).not.toBe('hung');
    const results = settled as (boolean | string)[];
    expect(results.filter((r) => typeof r === 'string' && /worker exited/.test(r))).toHaveLength(2);
    expect(results.filter((r) => r === true)).toHaveLength(4);
  });

  it('after close() every call rejects', async () => {
    const w = workers();
    await w.close();
    const b = makeBlock(6);
    await expect(w.decode(b.ref, copyOf(b.stored), 'x')).rejects.toThrow(/closed/);
    await expect(w.verify(0, 1, b.ref.id)).rejects.toThrow(/closed/);
  });
});

describe('BlockWorkers priority', () => {
  it('a job a reader waits on goes before queued background jobs; a raised one too', async () => {
    const w = workers(1);
    const blocks = Array.from({ length: 12 }, (_, i) => blockOf(patternBytes(256 * 1024, 300 + i)));
    const done: string[] = [];
    const raised = new Urgency('background');
    const jobs = blocks.map((b, i) => {
      const options =
        i === 11
          ? { priority: 'demand' as const }
          : i === 10
            ? { priority: 'background' as const, urgency: raised }
            : { priority: 'background' as const };
      return w
        .decode(b.ref, copyOf(b.stored), 'test', options)
        .then(() => done.push(i === 11 ? 'demand' : i === 10 ? 'raised' : `bg${i}`));
    });
    raised.raise();
    await Promise.all(jobs);
    // Two background jobs were already handed to the thread; the demand job and the raised one come next.
    expect(done.indexOf('demand')).toBeLessThanOrEqual(2);
    expect(done.indexOf('raised')).toBeLessThanOrEqual(3);
    expect(done).toHaveLength(12);
  });
});

describe('BlockWorkers.recycle', () => {
  it('decodes later blocks into recycled buffers, and only into buffers it handed out', async () => {
    const w = workers();
    const big = makeBlock(20, 256 * 1024);
    const first = await w.decode(big.ref, copyOf(big.stored), 'test');
    w.recycle(first.data);
    w.recycle(new Uint8Array(256 * 1024)); // not ours: ignored
    const small = makeBlock(21, 4096);
    const second = await w.decode(small.ref, copyOf(small.stored), 'test');
    expect(same(second.data, small.data)).toBe(true);
    expect(second.data.buffer.byteLength).toBe(256 * 1024); // the recycled buffer, holding the smaller block
    expect(first.data.length).toBe(0); // given away: the old view is empty, never another block's bytes
    const third = await w.decode(small.ref, copyOf(small.stored), 'test');
    expect(third.data.buffer.byteLength).toBe(4096); // no spare left: a fresh buffer
  });

  it('the same bytes decoded again after their block was recycled give a sound block', async () => {
    const w = workers();
    const b = makeBlock(22);
    const first = await w.decode(b.ref, copyOf(b.stored), 'test');
    w.recycle(first.data);
    const again = await w.decode(b.ref, first.stored, 'test');
    expect(again.data === first.data).toBe(false);
    expect(same(again.data, b.data)).toBe(true);
  });
});

describe('BlockWorkers.verify', () => {
  it('hashes a cached file on a worker thread: true for the block, false for anything else', async () => {
    const t = await tempDir('thfc-workers-');
    cleanups.push(t.cleanup);
    const data = patternBytes(256 * 1024, 7);
    const path = join(t.dir, 'block');
    await writeFile(path, data);
    const fd = openSync(path, 'r');
    cleanups.push(async () => closeSync(fd));
    const w = workers();
    expect(await w.verify(fd, data.length, blockId(data, 'sha1'))).toBe(true);
    expect(await w.verify(fd, data.length, blockId(corrupted(data), 'sha1'))).toBe(false);
    expect(await w.verify(fd, data.length + 10, blockId(data, 'sha1'))).toBe(false); // short file
    expect(await w.verify(fd, 10, 'not-a-name')).toBe(false);
  });

  it('an unreadable descriptor rejects and the thread carries on', async () => {
    const w = workers();
    await expect(w.verify(1_000_000, 10, blockId(new Uint8Array(10), 'sha1'))).rejects.toThrow(/EBADF/);
    const b = makeBlock(8);
    expect(same((await w.decode(b.ref, copyOf(b.stored), 'x')).data, b.data)).toBe(true);
  });
});
