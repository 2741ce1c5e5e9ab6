import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { readRange, TestMount } from './support/mounts.js';
import { BIN, node, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * The operator's tools of httpstorged through the real CLI: `list` (and
 * `stats` with no argument) over a real FUSE mount, `cache` and
 * `cache prune` over the cache that mount filled.
 */
const MiB = 1024 * 1024;
let work: string;
let cleanup: () => Promise<void>;
let server: StaticServer;
let mount: TestMount | undefined;
let mnt: string;
let cache: string;

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir('thfc-ops-'));
  const img = join(work, 'ops.img');
  await makeImage(img, [
    ['text', 4],
    ['zero', 2],
    ['random', 2],
  ]);
  const store = join(work, 'store');
  const r = await node(BIN.pack, ['pack', img, '--store', store, '--json']);
  expect(r.code, r.stderr).toBe(0);
  server = await new StaticServer(store).start();
  mnt = join(work, 'mnt');
  cache = join(work, 'cache');
  await mkdir(mnt);
  const started = await TestMount.start(mnt, join(work, 'log.txt'), [`${server.url}ops.idx`, '--cache', cache]);
  expect(started.result.code, started.result.stderr).toBe(0);
  mount = started.mount;
}, 120_000);

afterAll(async () => {
  await mount?.stop();
  await server?.kill();
  await cleanup?.();
});

const cli = (args: string[]) => node(BIN.httpstorged, args, { timeoutMs: 60_000 });

describe('httpstorged list', () => {
  it('lists this mount with its image, daemon pid and cache; stats with no argument says the same', async () => {
    const pid = (await mount?.stats())?.pid;
    const r = await cli(['list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const mine = (
      JSON.parse(r.stdout) as {
        mountpoint: string;
        status: { pid: number; cache: { dir: string }; images: { name: string }[] };
      }[]
    ).find((m) => m.mountpoint === mnt);
    expect(mine?.status.pid).toBe(pid);
    expect(mine?.status.cache.dir).toBe(cache);
    expect(mine?.status.images.map((i) => i.name)).toEqual(['ops']);

    const text = await cli(['list']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`${mnt}: daemon pid ${pid} since `);
    expect(text.stdout).toMatch(new RegExp(`  cache  ${cache}: \\d+ blocks`));
    expect(text.stdout).toMatch(/ {2}image {2}ops {2}8\.00 MiB {2}sha256:/);
    const stats = await cli(['stats']);
    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stdout).toContain(`${mnt}: daemon pid ${pid} since `);
  });
});

describe('httpstorged cache', () => {
  it('reports per-image coverage, refuses to prune while a daemon uses the cache, and prunes after', async () => {
    const before = JSON.parse((await cli(['cache', cache, '--json'])).stdout);
    expect(before.daemons).toEqual([(await mount?.stats())?.pid]);
    const unique = before.indexes[0].uniqueBlocks as number;
    expect(before.indexes).toHaveLength(1);
    expect(before.indexes[0].name).toBe('ops');

    // Read the whole image (from a child process), so the cache holds all of it.
    const read = await readRange(join(mnt, 'ops'), 0, 8 * MiB);
    expect(read.ok).toBe(true);
    const full = JSON.parse((await cli(['cache', cache, '--json'])).stdout);
    expect(full.indexes[0].cachedBlocks).toBe(unique);
    const text = await cli(['cache', cache]);
    expect(text.stdout).toContain(`ops  sha256:`);
    expect(text.stdout).toContain(`${unique}/${unique} blocks (100.0%)`);

    const refused = await cli(['cache', 'prune', cache, '--to', '0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is in use by httpstorged \(pid \d+\): unmount first/);

    const stopped = await mount?.stop();
    expect(stopped?.code, stopped?.stderr).toBe(0);
    mount = undefined;
    const sealBefore = (await stat(join(cache, 'seal'))).size;
    const pruned = await cli(['cache', 'prune', cache, '--to', `${full.bytes - 1}`, '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    const p = JSON.parse(pruned.stdout);
    expect(p.removed.blocks).toBe(1);
    expect(p.after.bytes).toBeLessThan(full.bytes);
    expect(p.sealed).toBe(full.blocks - 1);
    expect((await stat(join(cache, 'seal'))).size).toBeLessThan(sealBefore);
    const after = JSON.parse((await cli(['cache', cache, '--json'])).stdout);
    expect(after.indexes[0].cachedBlocks).toBe(unique - 1);
    expect(after.daemons).toEqual([]);

    const all = await cli(['cache', 'prune', cache, '--to', '0']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/removed \d+ blocks .* least recently used first; 0 blocks, 0 B left/);
    expect(JSON.parse((await cli(['cache', cache, '--json'])).stdout).indexes[0].cachedBlocks).toBe(0);
    expect(await readFile(join(cache, 'seal'))).toBeTruthy();
  }, 120_000);

  it('names a cache that does not exist, and wants --to for prune', async () => {
    const missing = await cli(['cache', join(work, 'nope')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^httpstorged: .*nope/);
    const noTo = await cli(['cache', 'prune', cache]);
    expect(noTo.code).toBe(2);
    expect(noTo.stderr).toMatch(/^httpstorged: required option '--to/);
  });
});
