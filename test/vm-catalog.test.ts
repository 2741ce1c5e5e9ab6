import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { BIN, node, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';
import { VM } from './support/vm.js';

/**
 * The catalog's two sides agree: what `thfc-pack catalog` writes into a store
 * is what `thfc-vm list` reads back from a web server serving that store
 * (the writer and the strict reader live in different packages).
 */
let work: string;
let cleanupWork: () => Promise<void>;
let store: string;
let server: StaticServer;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-vm-catalog-'));
  store = join(work, 'store');
  for (const name of ['debian', 'knoppix']) {
    const img = join(work, `${name}.img`);
    await makeImage(img, [['text', 1]]);
    expect((await node(BIN.pack, ['pack', img, '--store', store])).code).toBe(0);
  }
  await mkdir(join(store, 'boot'));
  await writeFile(join(store, 'boot/vmlinuz'), 'kernel');
  server = await new StaticServer(store).start();
}, 120_000);

afterAll(async () => {
  await server?.kill();
  await cleanupWork?.();
});

const list = async () => {
  const r = await node(VM.cli, ['list', server.url, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).images as { name: string; indexUrl: string; kernelUrl?: string; boot: object }[];
};

describe('thfc-pack catalog -> thfc-vm list over HTTP', () => {
  it('entries added, replaced and removed by the publisher are what clients see', async () => {
    const add = (args: string[]) => node(BIN.pack, ['catalog', 'add', store, ...args]);
    expect(
      (
        await add([
          'debian.idx',
          '-d',
          'Debian',
          '--kernel',
          'boot/vmlinuz',
          '--append',
          'root=/dev/vda',
          '--net',
          'user',
        ])
      ).code,
    ).toBe(0);
    expect((await add(['knoppix.idx', '--name', 'knoppix-5.3.1', '--disk-bus', 'ide', '--mem', '512'])).code).toBe(0);
    let images = await list();
    expect(images.map((e) => e.name)).toEqual(['debian', 'knoppix-5.3.1']);
    expect(images[0]).toMatchObject({
      indexUrl: `${server.url}debian.idx`,
      kernelUrl: `${server.url}boot/vmlinuz`,
      boot: { append: 'root=/dev/vda', net: 'user' },
    });
    expect(images[1]?.boot).toEqual({ diskBus: 'ide', mem: 512 });

    const human = await node(VM.cli, ['list', `${server.url}catalog.json`]);
    expect(human.stdout).toBe(
      `1  debian         Debian  (${server.url}debian.idx)\n2  knoppix-5.3.1  (${server.url}knoppix.idx)\n`,
    );

    expect((await node(BIN.pack, ['catalog', 'remove', store, 'debian'])).code).toBe(0);
    images = await list();
    expect(images.map((e) => e.name)).toEqual(['knoppix-5.3.1']);
    const gone = await node(BIN.pack, ['catalog', 'remove', store, 'debian']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/no entry named debian/);
  }, 60_000);
});
