import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InterruptedError } from '@thfc/format';
import { isMounted } from '@thfc/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MountFailedError } from '../src/errors.js';
import { bundledHttpstorged, HttpstorgedMount } from '../src/httpstorged.js';
import { packImage, tempDir } from './helpers.js';

/** Real httpstorged mounts of a small store packed by the real thfc-pack (both from their dist/). */
let dir: string;
let cleanup: () => Promise<void>;
let image: Buffer;
const command = () => bundledHttpstorged(process.execPath);
const never = new AbortController().signal;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  image = Buffer.concat([randomBytes(600_000), Buffer.alloc(500_000), Buffer.from('end of disk')]);
  await packImage(dir, 'small', image);
});
afterAll(async () => {
  execFileSync('sh', ['-c', `for m in ${dir}/mnt*; do fusermount -u -z "$m" 2>/dev/null; done; true`]);
  await cleanup();
});

describe('HttpstorgedMount', () => {
  it('mounts an index, shows its one image, reports stats, and unmounts on stop', async () => {
    const mnt = join(dir, 'mnt1');
    await mkdir(mnt);
    const m = await HttpstorgedMount.start(command(), {
      mountpoint: mnt,
      index: join(dir, 'store/small.idx'),
      args: ['--cache', join(dir, 'cache1')],
      logFile: join(dir, 'log1'),
      signal: never,
    });
    expect(m.disk).toBe(join(mnt, 'small'));
    // read from a child process: the daemon is another process, but keep to the rule of the e2e tests
    expect(execFileSync('cmp', [m.disk, join(dir, 'small.img')]).length).toBe(0);
    const s = await m.stats(never);
    expect(s).toMatchObject({ name: 'small', size: image.length, readErrors: 0 });
    expect(s?.bytesRead).toBeGreaterThanOrEqual(image.length);
    expect(await m.stop()).toBe(true);
    expect(await isMounted(mnt)).toBe(false);
  }, 60_000);

  it("a failed mount reports httpstorged's own message and exit code", async () => {
    const mnt = join(dir, 'mnt2');
    await mkdir(mnt);
    const p = HttpstorgedMount.start(command(), {
      mountpoint: mnt,
      index: join(dir, 'store/missing.idx'),
      args: [],
      logFile: join(dir, 'log2'),
      signal: never,
    });
    await expect(p).rejects.toBeInstanceOf(MountFailedError);
    await expect(p).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/missing\.idx/) });
    expect(await isMounted(mnt)).toBe(false);
  }, 60_000);

  it('an abort while mounting stops the daemon and leaves nothing mounted', async () => {
    const mnt = join(dir, 'mnt3');
    await mkdir(mnt);
    const ac = new AbortController();
    ac.abort();
    await expect(
      HttpstorgedMount.start(command(), {
        mountpoint: mnt,
        index: join(dir, 'store/small.idx'),
        args: [],
        logFile: join(dir, 'log3'),
        signal: ac.signal,
      }),
    ).rejects.toThrow();
    const ac2 = new AbortController();
    const p = HttpstorgedMount.start(command(), {
      mountpoint: mnt,
      index: join(dir, 'store/small.idx'),
      args: ['--cache', join(dir, 'cache3')],
      logFile: join(dir, 'log3'),
      signal: ac2.signal,
    });
    setTimeout(() => ac2.abort(), 30);
    await expect(p).rejects.toBeInstanceOf(InterruptedError);
    expect(await isMounted(mnt)).toBe(false);
  }, 60_000);
});
