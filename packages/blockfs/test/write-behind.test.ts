import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BlockRef, StoreFullError } from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';
import { MemoryLogger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskCache } from '../src/io/disk-cache.js';
import { WriteBehind } from '../src/io/write-behind.js';
import { deferred, rawBlock, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A sink whose puts wait for the test to let them go. */
function gatedSink() {
  const fake = new FakeSource('sink');
  const gates: { ref: BlockRef; open: () => void; fail: (e: unknown) => void }[] = [];
  const sink = {
    put(ref: BlockRef, data: Uint8Array): Promise<void> {
      const d = deferred();
      gates.push({ ref, open: () => d.resolve(), fail: (e) => d.reject(e) });
      return d.promise.then(() => fake.put(ref, data));
    },
    toString: () => 'fake(sink)',
  };
  return { fake, gates, sink };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('WriteBehind', () => {
  it('returns at once, keeps the block readable while pending, and resolves true once it is stored', async () => {
    const { fake, gates, sink } = gatedSink();
    const writer = new WriteBehind({ sink });
    const b = rawBlock(1000);
    const stored = writer.write(b.ref, b.stored);
    expect(writer.pending(b.ref.id)).toBe(b.stored);
    expect(writer.write(b.ref, b.stored)).toBe(stored); // the same write, not a second one
    await tick();
    expect(gates).toHaveLength(1);
    gates[0]?.open();
    expect(await stored).toBe(true);
    expect(writer.pending(b.ref.id)).toBeUndefined();
    expect(fake.blocks.get(b.ref.id)).toBe(b.stored);
    await writer.idle();
  });

  it('runs at most `parallel` writes at once, in order', async () => {
    const { gates, sink } = gatedSink();
    const writer = new WriteBehind({ sink }, { parallel: 2 });
    const blocks = Array.from({ length: 5 }, () => rawBlock(100));
    const done = blocks.map((b) => writer.write(b.ref, b.stored));
    await tick();
    expect(gates.map((g) => g.ref.id)).toEqual(blocks.slice(0, 2).map((b) => b.ref.id));
    gates[0]?.open();
    await tick();
    expect(gates).toHaveLength(3);
    for (const g of gates.slice(1)) g.open();
    await tick();
    for (const g of gates.slice(3)) g.open();
    expect(await Promise.all(done)).toEqual([true, true, true, true, true]);
    await writer.idle();
  });

  it('serves past maxPendingBytes by not caching: the write resolves false at once', async () => {
    const { gates, sink } = gatedSink();
    const writer = new WriteBehind({ sink }, { maxPendingBytes: 2500 });
    const [a, b, c] = [rawBlock(1000), rawBlock(1000), rawBlock(1000)];
    const pa = writer.write(a.ref, a.stored);
    const pb = writer.write(b.ref, b.stored);
    expect(await writer.write(c.ref, c.stored)).toBe(false);
    expect(writer.pending(c.ref.id)).toBeUndefined();
    expect(writer.skipped).toBe(1);
    await tick();
    for (const g of gates) g.open();
    expect(await Promise.all([pa, pb])).toEqual([true, true]);
  });

  it('a failed write resolves false, is logged once, and later failures are only counted', async () => {
    const { gates, sink } = gatedSink();
    const logger = new MemoryLogger();
    const writer = new WriteBehind({ sink, logger });
    const [a, b] = [rawBlock(100), rawBlock(100)];
    const pa = writer.write(a.ref, a.stored);
    const pb = writer.write(b.ref, b.stored);
    await tick();
    for (const g of gates) g.fail(new Error('EIO: i/o error'));
    expect(await Promise.all([pa, pb])).toEqual([false, false]);
    expect(writer.failed).toBe(2);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(
      new RegExp(`^FAULT cache fake\\(sink\\): cannot store block ${a.ref.id}: EIO: i/o error; serving it uncached`),
    );
    expect(writer.pending(a.ref.id)).toBeUndefined();
  });

  it('a full disk stops caching for good, logged once', async () => {
    const { gates, sink } = gatedSink();
    const logger = new MemoryLogger();
    const writer = new WriteBehind({ sink, logger });
    const blocks = Array.from({ length: 3 }, () => rawBlock(100));
    const first = writer.write((blocks[0] as { ref: BlockRef }).ref, (blocks[0] as { stored: Uint8Array }).stored);
    await tick();
    gates[0]?.fail(new StoreFullError('no space left on device'));
    expect(await first).toBe(false);
    expect(writer.stopped).toBe(true);
    for (const b of blocks.slice(1)) expect(await writer.write(b.ref, b.stored)).toBe(false);
    expect(gates).toHaveLength(1);
    expect(logger.lines).toEqual(['FAULT cache fake(sink) is full: serving blocks without caching them']);
  });

  it('gives each buffer it wrote to release(), and none it failed to write or declined', async () => {
    const { gates, sink } = gatedSink();
    const released: Uint8Array[] = [];
    const writer = new WriteBehind({ sink, release: (d) => released.push(d) }, { maxPendingBytes: 250 });
    const [a, b, c] = [rawBlock(100), rawBlock(100), rawBlock(100)];
    const pa = writer.write(a.ref, a.stored);
    const pb = writer.write(b.ref, b.stored);
    expect(await writer.write(c.ref, c.stored)).toBe(false); // declined: over maxPendingBytes
    await tick();
    gates[0]?.open();
    gates[1]?.fail(new Error('EIO'));
    expect(await Promise.all([pa, pb])).toEqual([true, false]);
    expect(released).toEqual([a.stored]);
  });

  it('idle() waits for every write queued', async () => {
    const { gates, sink } = gatedSink();
    const writer = new WriteBehind({ sink }, { parallel: 1 });
    for (let i = 0; i < 3; i++) {
      const b = rawBlock(100);
      void writer.write(b.ref, b.stored);
    }
    let idle = false;
    void writer.idle().then(() => {
      idle = true;
    });
    for (let i = 0; i < 3; i++) {
      await tick();
      expect(idle).toBe(false);
      gates[i]?.open();
    }
    await tick();
    expect(idle).toBe(true);
  });

  it('over a real disk cache: blocks land whole; an unwritable cache logs one fault and reads go on', async () => {
    const t = await tempDir('thfc-write-behind-');
    cleanups.push(t.cleanup);
    const disk = new DiskCache({}, { dir: t.dir });
    const writer = new WriteBehind({ sink: disk });
    const blocks = Array.from({ length: 6 }, () => rawBlock(4096));
    const results = await Promise.all(blocks.map((b) => writer.write(b.ref, b.stored)));
    expect(results.every(Boolean)).toBe(true);
    for (const b of blocks) expect(Buffer.from(await disk.get(b.ref)).equals(Buffer.from(b.stored))).toBe(true);

    const bad = join(t.dir, 'file');
    await writeFile(bad, 'a file where the cache directory belongs');
    const logger = new MemoryLogger();
    const broken = new WriteBehind({ sink: new DiskCache({}, { dir: bad }), logger });
    expect(await broken.write(blocks[0]?.ref as BlockRef, blocks[0]?.stored as Uint8Array)).toBe(false);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(new RegExp(`^FAULT cache disk\\(${bad}\\): cannot store block`));
    expect(String(writer)).toBe(`behind(disk(${t.dir}))`);
  });

  it.skipIf(process.getuid?.() !== 0)('over a real full disk: stops caching and logs one line', async () => {
    const t = await tempDir('thfc-write-behind-full-');
    cleanups.push(t.cleanup);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', t.dir]);
    try {
      const logger = new MemoryLogger();
      const disk = new DiskCache({}, { dir: join(t.dir, 'cache') });
      const writer = new WriteBehind({ sink: disk, logger }, { parallel: 1 });
      const blocks = Array.from({ length: 8 }, () => rawBlock(16 * 1024));
      const results = await Promise.all(blocks.map((b) => writer.write(b.ref, b.stored)));
      expect(results.filter(Boolean).length).toBeGreaterThan(0);
      expect(results.filter((r) => !r).length).toBeGreaterThan(0);
      expect(writer.stopped).toBe(true);
      expect(logger.lines).toEqual([
        `FAULT cache disk(${join(t.dir, 'cache')}) is full: serving blocks without caching them`,
      ]);
    } finally {
      execFileSync('umount', [t.dir]);
    }
  });
});
