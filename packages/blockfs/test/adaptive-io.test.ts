import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdaptiveIo } from '../src/sources/adaptive-io.js';
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
    const io = new AdaptiveIo({ slowMs: 1, backoffMs: 100, now: () => (clock += step) });
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

  it('open() reports size and identity, refuses a directory and passes ENOENT on, in either mode', async () => {
    for (const slowMs of [1000, -1]) {
      const io = new AdaptiveIo({ slowMs, backoffMs: 1e9 });
      const path = await file('abc');
      await io.open(path).then((f) => io.close(f.fd)); // the first call may switch modes
      const f = await io.open(path);
      expect(f.size).toBe(3);
      expect(f.identity).toMatch(/^\d+\/[\d.]+$/);
      io.close(f.fd);
      const dir = join(path, '..', 'sub');
      await mkdir(dir);
      await expect(io.open(dir)).rejects.toMatchObject({ code: 'EISDIR' });
      await expect(io.open(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
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
