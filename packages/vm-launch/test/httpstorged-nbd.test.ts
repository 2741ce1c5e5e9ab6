import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MountFailedError } from '../src/errors.js';
import { bundledHttpstorged } from '../src/httpstorged.js';
import { HttpstorgedNbd } from '../src/httpstorged-nbd.js';
import { packImage, tempDir } from './helpers.js';

/** Real `httpstorged nbd` of a small store packed by the real thfc-pack, read by qemu-img (both from dist/ or PATH). */
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
  await cleanup();
});

describe('HttpstorgedNbd', () => {
  it('serves an index on a socket, qemu reads it through the json: name, stats count it, stop removes the socket', async () => {
    const socket = join(dir, 'nbd1.sock');
    const d = await HttpstorgedNbd.start(command(), {
      socket,
      index: join(dir, 'store/small.idx'),
      args: ['--cache', join(dir, 'cache1')],
      logFile: join(dir, 'log1'),
      signal: never,
    });
    expect(d.disk).toMatch(/^json:\{"driver":"raw","file":\{"driver":"nbd"/);
    const cmp = execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', join(dir, 'small.img'), d.disk]);
    expect(cmp.toString()).toMatch(/identical/);
    const s = await d.stats(never);
    expect(s).toMatchObject({ name: 'small', size: image.length, readErrors: 0 });
    expect(await d.stop()).toBe(true);
    await expect(stat(socket)).rejects.toThrow();
  }, 60_000);

  it("a daemon that cannot start reports httpstorged's own message and exit code", async () => {
    const p = HttpstorgedNbd.start(command(), {
      socket: join(dir, 'nbd2.sock'),
      index: join(dir, 'store/missing.idx'),
      args: [],
      logFile: join(dir, 'log2'),
      signal: never,
    });
    await expect(p).rejects.toBeInstanceOf(MountFailedError);
    await expect(p).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/missing\.idx/) });
  }, 60_000);
});
