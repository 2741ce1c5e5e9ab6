import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryLogger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { FuseMount, type ImageFile } from '../src/fuse-adapter.js';
import { tempDir } from './image-fixtures.js';

const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const BYTES = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));

/** One image file whose handles answer with `handle`; mounted on a fresh directory, read by child processes. */
async function mountOne(handle: ImageFile['open']) {
  const t = await tempDir('thfc-fuse-adapter-');
  cleanups.push(t.cleanup);
  const mountpoint = join(t.dir, 'mnt');
  await mkdir(mountpoint);
  const logger = new MemoryLogger();
  const fuse = new FuseMount(
    { images: [{ name: 'disk', size: BYTES.length, open: handle }], status: [], logger },
    { mountpoint },
  );
  await fuse.mount();
  cleanups.push(() => fuse.unmount());
  return { file: join(mountpoint, 'disk'), logger };
}

/** sha256 of the file, computed by a child process (never read a mount from the process serving it). */
async function sha256(file: string): Promise<string> {
  return (await run('sha256sum', [file])).stdout.split(' ')[0] as string;
}

const expected = (await import('node:crypto')).createHash('sha256').update(BYTES).digest('hex');

const asyncRead = async (buf: Buffer, len: number, pos: number) => {
  const n = Math.max(0, Math.min(len, BYTES.length - pos));
  BYTES.copy(buf, 0, pos, pos + n);
  return n;
};

describe('FuseMount reads', () => {
  it('uses readNow when it answers, read() when it returns undefined', async () => {
    let now = 0;
    let later = 0;
    const { file } = await mountOne(() => ({
      read: (buf, len, pos) => {
        later++;
        return asyncRead(buf, len, pos);
      },
      readNow: (buf, len, pos) => {
        if (pos % (256 * 1024) !== 0) return undefined; // only requests at 256 KiB boundaries answer now
        now++;
        const n = Math.max(0, Math.min(len, BYTES.length - pos));
        BYTES.copy(buf, 0, pos, pos + n);
        return n;
      },
    }));
    expect(await sha256(file)).toBe(expected);
    expect(now).toBeGreaterThan(0);
    expect(later).toBeGreaterThan(0);
  });

  it('a readNow that throws (a bug) is logged, the read is answered by read(), and the mount stays up', async () => {
    const { file, logger } = await mountOne(() => ({
      read: asyncRead,
      readNow: () => {
        throw new Error('boom');
      },
    }));
    expect(await sha256(file)).toBe(expected);
    expect(await sha256(file)).toBe(expected);
    expect(logger.lines.some((l) => l.includes('internal error in the fast read path') && l.includes('boom'))).toBe(
      true,
    );
  });
});

describe('FuseMount statfs', () => {
  it('reports a read-only file system as full as its images: their 4 KiB blocks, one inode each, none free', async () => {
    const { file } = await mountOne(() => ({ read: asyncRead }));
    const { stdout } = await run('stat', ['-f', '-c', '%S %b %f %a %c %d', join(file, '..')]);
    expect(stdout.trim()).toBe(`4096 ${Math.ceil(BYTES.length / 4096)} 0 0 1 0`);
  });
});
