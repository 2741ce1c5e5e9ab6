import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { isMounted, TestMount } from './support/mounts.js';
import { BIN, node, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * Messages that misled (issue 15 §2), each through the real CLI: what the
 * user did, and the one line they now get.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let server: StaticServer;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-messages-'));
  const store = join(work, 'store');
  const img = join(work, 'small.img');
  await makeImage(img, [['text', 2]]);
  expect((await node(BIN.pack, ['pack', img, '--store', store])).code).toBe(0);
  server = await new StaticServer(store).start();
}, 60_000);

afterAll(async () => {
  await server?.kill();
  await cleanupWork?.();
});

describe('httpstorged', () => {
  it('a non-empty mountpoint is refused up front, saying so and what to do, exit 2', async () => {
    const mnt = join(work, 'full');
    await mkdir(mnt);
    await writeFile(join(mnt, 'notes.txt'), 'mine\n');
    const r = await node(BIN.httpstorged, [mnt, `${server.url}small.idx`, '--cache', join(work, 'c-full')], {
      timeoutMs: 30_000,
    });
    expect(r.stderr).toBe(
      `httpstorged: mountpoint ${mnt} is not empty (1 entry, such as notes.txt); mount on an empty directory, or move what is there out of it\n`,
    );
    expect(r.code).toBe(2);
    expect(await isMounted(mnt)).toBe(false);
  }, 60_000);

  it('`httpstorged mount MNT URL` is the mount itself, not a mount on a directory named "mount"', async () => {
    const mnt = join(work, 'alias');
    await mkdir(mnt);
    const { mount, result } = await TestMount.start('mount', join(work, 'alias.log'), [
      mnt,
      `${server.url}small.idx`,
      '--cache',
      join(work, 'c-alias'),
    ]);
    try {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(await isMounted(mnt)).toBe(true);
    } finally {
      await new TestMount(mnt, mount.log).stop();
    }
  }, 60_000);
});
