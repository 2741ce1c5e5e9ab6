import { readdirSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdaptiveIo } from '../src/io/adaptive-io.js';
import { identityOf, sameVersion } from '../src/io/file-identity.js';
import { tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function file(bytes: string): Promise<string> {
  const t = await tempDir('thfc-adaptive-io-');
  cleanups.push(t.cleanup);
  const path = join(t.dir, 'f');
  await writeFile(path, bytes);
  return path;
}

describe('AdaptiveIo', () => {
  it('works in place while calls are fast; a slow one switches to the thread pool until the backoff passes', async () => {
    let clock = 0;
    /** Every call to now() inside a synchronous call advances the clock by `step`. */
    let step = 0;
    const io = new AdaptiveIo({ slowMs: 1, backoffMs: 100, slowCalls: 1, now: () => (clock += step) });
    const f = await io.open(await file('0123456789'));
    const dst = Buffer.alloc(4);
    expect(await io.read(f.fd, dst, 0, 4, 3)).toBe(4);
    expect(dst.toString()).toBe('3456');
    expect(io.counts).toEqual({ sync: 3, async: 0, slow: 0 }); // open, fstat, read
    step = 5; // the next call takes 5 ms: slow
    await io.read(f.fd, dst, 0, 4, 0);
    expect(io.counts.slow).toBe(1);
    step = 0;
    await io.read(f.fd, dst, 0, 4, 0);
    expect(io.counts.async).toBe(1);
    clock += 200; // past the backoff
    await io.read(f.fd, dst, 0, 2, 8);
    expect(dst.subarray(0, 2).toString()).toBe('89');
    expect(io.counts).toEqual({ sync: 5, async: 1, slow: 1 });
    io.close(f.fd);
  });

  it('by default one slow call, or slow calls far apart, do not switch; three close together do', async () => {
    let clock = 0;
    let step = 0;
    const io = new AdaptiveIo({ slowMs: 1, backoffMs: 100, now: () => (clock += step) });
    const f = await io.open(await file('0123456789'));
    const dst = Buffer.alloc(4);
    const readOnce = async (stepMs: number) => {
      step = stepMs;
      await io.read(f.fd, dst, 0, 4, 0);
      step = 0;
    };
    await readOnce(5); // one slow call: a preempted thread or a cold lookup
    await readOnce(0);
    expect(io.counts).toMatchObject({ async: 0, slow: 1 });
    clock += 100;
    await readOnce(5); // the second, 100 ms after the first: still not the disk
    clock += 100;
    await readOnce(5);
    await readOnce(0);
    expect(io.counts).toMatchObject({ async: 0, slow: 3 });
    await readOnce(5); // two more right after the third: three slow calls within 50 ms
    await readOnce(5);
    expect(io.counts.async).toBe(0);
    await readOnce(0);
    expect(io.counts).toMatchObject({ async: 1, slow: 5 });
    expect(dst.toString()).toBe('0123');
    io.close(f.fd);
  });

  it('a single stall (> stallMs) switches at once; long slow calls back to back count as a run', async () => {
    let clock = 0;
    let step = 0;
    const stalled = new AdaptiveIo({ slowMs: 1, backoffMs: 100, now: () => (clock += step) });
    const f = await stalled.open(await file('0123456789'));
    const dst = Buffer.alloc(4);
    step = 20; // each now() inside the call adds 20 ms: a 20 ms pread, above the default 10 ms stall
    await stalled.read(f.fd, dst, 0, 4, 0);
    step = 0;
    await stalled.read(f.fd, dst, 0, 4, 0);
    expect(stalled.counts).toMatchObject({ slow: 1, async: 1 });
    stalled.close(f.fd);

    // 40 ms calls one after another. This clock also moves 80 ms between two calls (every now() adds `step`),
    // so the gaps are 80 ms: within a 100 ms window they make a run of three, though their ends span 240 ms.
    const slowDisk = new AdaptiveIo({
      slowMs: 1,
      backoffMs: 100,
      stallMs: 1000,
      slowWindowMs: 100,
      now: () => (clock += step),
    });
    const g = await slowDisk.open(await file('0123456789'));
    step = 40;
    for (let i = 0; i < 3; i++) await slowDisk.read(g.fd, dst, 0, 4, 0);
    step = 0;
    await slowDisk.read(g.fd, dst, 0, 4, 0);
    expect(slowDisk.counts).toMatchObject({ slow: 3, async: 1 });
    slowDisk.close(g.fd);
  });

  it('the pooled spell starts short and doubles while calls stay slow; short again after a quiet while', async () => {
    let clock = 0;
    let step = 0;
    const io = new AdaptiveIo({
      slowMs: 1,
      slowCalls: 1,
      minBackoffMs: 50,
      backoffMs: 400,
      now: () => (clock += step),
    });
    const f = await io.open(await file('0123456789'));
    const dst = Buffer.alloc(4);
    /** One slow call, then 10 ms steps until a call is made in place again: how long the pooled spell lasted. */
    const spell = async () => {
      step = 5;
      await io.read(f.fd, dst, 0, 4, 0);
      step = 0;
      const start = clock;
      for (;;) {
        const pooled = io.counts.async;
        await io.read(f.fd, dst, 0, 4, 0);
        if (io.counts.async === pooled) return clock - start;
        clock += 10;
      }
    };
    expect([await spell(), await spell(), await spell(), await spell(), await spell()]).toEqual([
      50, 100, 200, 400, 400,
    ]);
    clock += 1000; // a quiet while
    expect(await spell()).toBe(50);
    io.close(f.fd);
  });

  it('open() reports size and identity, refuses a directory and passes ENOENT on, in either mode', async () => {
    for (const slowMs of [1000, -1]) {
      const io = new AdaptiveIo({ slowMs, backoffMs: 1e9 });
      const path = await file('abc');
      await io.open(path).then((f) => io.close(f.fd)); // the first call may switch modes
      const f = await io.open(path);
      expect(f.size).toBe(3);
      expect(f.identity).toMatch(/^\d+ \d+ \d+ \d+ \d+$/);
      io.close(f.fd);
      const dir = join(path, '..', 'sub');
      await mkdir(dir);
      await expect(io.open(dir)).rejects.toMatchObject({ code: 'EISDIR' });
      await expect(io.open(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('stat() gives the descriptor’s fstat with nanosecond times, in place or not', async () => {
    for (const slowMs of [1000, -1]) {
      const io = new AdaptiveIo({ slowMs, backoffMs: 1e9 });
      const path = await file('abcd');
      const f = await io.open(path);
      const st = await io.stat(f.fd);
      expect(st.size).toBe(4n);
      expect(identityOf(st)).toBe(f.identity);
      const byName = statSync(path, { bigint: true });
      expect(st.ctimeNs).toBe(byName.ctimeNs);
      await writeFile(path, 'abcde');
      expect(sameVersion(await io.stat(f.fd), f.stats)).toBe(false);
      io.close(f.fd);
      await expect(io.stat(1_000_000)).rejects.toMatchObject({ code: 'EBADF' });
    }
  });

  it('a read that fails rejects, in place or not', async () => {
    for (const slowMs of [1000, -1]) {
      const io = new AdaptiveIo({ slowMs, backoffMs: 1e9 });
      await io.read(1_000_000, Buffer.alloc(1), 0, 1, 0).catch(() => {}); // may switch modes
      await expect(io.read(1_000_000, Buffer.alloc(1), 0, 1, 0)).rejects.toMatchObject({ code: 'EBADF' });
    }
  });
});

describe('AdaptiveIo.statNow', () => {
  it('fstats in place; undefined in pooled mode and on a bad descriptor, without throwing', async () => {
    let clock = 0;
    let step = 0;
    const io = new AdaptiveIo({ slowMs: 1, backoffMs: 100, slowCalls: 1, now: () => (clock += step) });
    const f = await io.open(await file('0123'));
    expect(io.statNow(f.fd)?.ino).toBe(f.stats.ino);
    expect(io.statNow(1_000_000)).toBeUndefined();
    step = 5; // slow: it still answers, and switches to the pool
    expect(io.statNow(f.fd)).toBeDefined();
    step = 0;
    expect(io.statNow(f.fd)).toBeUndefined();
    clock += 200;
    expect(io.statNow(f.fd)).toBeDefined();
    io.close(f.fd);
  });
});

describe('AdaptiveIo.openNow', () => {
  it('opens and fstats in place; undefined in pooled mode, for a missing file and for a directory', async () => {
    let clock = 0;
    let step = 0;
    const io = new AdaptiveIo({ slowMs: 1, backoffMs: 100, slowCalls: 1, now: () => (clock += step) });
    const path = await file('0123');
    const fds = () => readdirSync('/proc/self/fd').length;
    const open0 = fds();
    const f = io.openNow(path);
    expect(f?.size).toBe(4);
    expect(f?.identity).toBe(identityOf(statSync(path, { bigint: true })));
    expect(f && sameVersion(f.stats, statSync(path, { bigint: true }))).toBe(true);
    expect(io.openNow(`${path}.missing`)).toBeUndefined();
    const dir = join(path, '..', 'd');
    await mkdir(dir);
    expect(io.openNow(dir)).toBeUndefined();
    step = 5; // a slow open switches to the pool: its fstat is left to open(), and the descriptor closed
    expect(io.openNow(path)).toBeUndefined();
    expect(fds()).toBe(open0 + 1); // only f: the directory's and the slow open's descriptors were closed
    step = 0;
    expect(io.openNow(path)).toBeUndefined();
    clock += 200;
    const again = io.openNow(path);
    expect(again?.size).toBe(4);
    for (const o of [f, again]) if (o) io.close(o.fd);
  });
});

describe('AdaptiveIo.readNow', () => {
  it('reads in place and returns the count, at the offset asked for; short at the end of the file', async () => {
    const io = new AdaptiveIo({ slowMs: 1000 });
    const f = await io.open(await file('0123456789'));
    const before = io.counts.sync;
    const dst = Buffer.alloc(8, '.');
    expect(io.readNow(f.fd, dst, 2, 4, 3)).toBe(4);
    expect(dst.toString()).toBe('..3456..');
    expect(io.readNow(f.fd, dst, 0, 4, 8)).toBe(2);
    expect(dst.toString()).toBe('893456..');
    expect(io.readNow(f.fd, dst, 0, 4, 10)).toBe(0);
    expect(io.counts).toEqual({ sync: before + 3, async: 0, slow: 0 });
    io.close(f.fd);
  });

  it('is undefined while calls go through the pool, copying nothing; works again after the backoff', async () => {
    let clock = 0;
    let step = 0;
    const io = new AdaptiveIo({ slowMs: 1, backoffMs: 100, slowCalls: 1, now: () => (clock += step) });
    const f = await io.open(await file('0123456789'));
    const dst = Buffer.alloc(4, '.');
    step = 5; // this readNow is slow: it still answers, and switches to the pool
    expect(io.readNow(f.fd, dst, 0, 4, 0)).toBe(4);
    step = 0;
    expect(dst.toString()).toBe('0123');
    expect(io.counts).toEqual({ sync: 3, async: 0, slow: 1 });
    dst.fill('.');
    expect(io.readNow(f.fd, dst, 0, 4, 4)).toBeUndefined();
    expect(dst.toString()).toBe('....');
    expect(io.counts).toEqual({ sync: 3, async: 0, slow: 1 }); // not a call at all
    expect(await io.read(f.fd, dst, 0, 4, 4)).toBe(4); // read() still answers, through the pool
    expect(io.counts.async).toBe(1);
    clock += 200; // past the backoff
    expect(io.readNow(f.fd, dst, 0, 2, 8)).toBe(2);
    expect(dst.subarray(0, 2).toString()).toBe('89');
    expect(io.counts).toEqual({ sync: 4, async: 1, slow: 1 });
    io.close(f.fd);
  });

  it('is undefined on an error (a bad descriptor) and does not throw; read() reports it', async () => {
    const io = new AdaptiveIo({ slowMs: 1000 });
    const dst = Buffer.alloc(1, '.');
    let n: number | undefined = 1;
    expect(() => {
      n = io.readNow(1_000_000, dst, 0, 1, 0);
    }).not.toThrow();
    expect(n).toBeUndefined();
    expect(dst.toString()).toBe('.');
    await expect(io.read(1_000_000, dst, 0, 1, 0)).rejects.toMatchObject({ code: 'EBADF' });
  });
});
