import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { readRange, TestMount } from './support/mounts.js';
import { BIN, node, run, tempDir } from './support/processes.js';
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

  it('the background daemon runs with its young generation capped (T6: peak RSS within 200 MB)', async () => {
    const pid = (await mount?.stats())?.pid;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    expect(cmdline).toContain('--max-semi-space-size=8');
    // A Node flag, before the script: after it, it would be the daemon's own argument.
    expect(cmdline.indexOf('--max-semi-space-size=8')).toBeLessThan(cmdline.findIndex((a) => a.endsWith('cli.js')));
  });

  it('lists a mount whose daemon was killed as stale, with the command that clears it', async () => {
    const staleMnt = join(work, 'mnt-stale');
    await mkdir(staleMnt);
    const { mount: m, result } = await TestMount.start(staleMnt, join(work, 'stale-log.txt'), [
      `${server.url}ops.idx`,
      '--cache',
      join(work, 'cache-stale'),
    ]);
    expect(result.code, result.stderr).toBe(0);
    try {
      process.kill((await m.stats()).pid, 'SIGKILL');
      await waitUntil(undefined, 'the stale mount', async () =>
        JSON.parse((await cli(['list', '--json'])).stdout).some(
          (l: { mountpoint: string; status: unknown }) => l.mountpoint === staleMnt && l.status === null,
        ),
      );
      const text = await cli(['list']);
      expect(text.stdout).toContain(
        `${staleMnt}: stale: its daemon died; clear it with: httpstorged umount ${staleMnt}`,
      );
    } finally {
      await m.stop();
    }
    expect((await cli(['list'])).stdout).not.toContain(staleMnt);
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
    // A mistyped CACHE is named, never made into an empty cache.
    const pruneMissing = await cli(['cache', 'prune', join(work, 'nope'), '--to', '0']);
    expect(pruneMissing.code).toBe(3);
    expect(pruneMissing.stderr).toMatch(/^httpstorged: .*nope: no such file or directory$/m);
    expect(existsSync(join(work, 'nope'))).toBe(false);
    await writeFile(join(work, 'cache-file'), 'not a cache');
    const notDir = await cli(['cache', 'prune', join(work, 'cache-file'), '--to', '0']);
    expect(notDir.code).toBe(2);
    expect(notDir.stderr).toMatch(/cache-file: not a directory$/m);
    const noTo = await cli(['cache', 'prune', cache]);
    expect(noTo.code).toBe(2);
    expect(noTo.stderr).toMatch(/^httpstorged: required option '--to/);
  });
});

describe('progress on a non-TTY', () => {
  it('thfc-pack prints a progress line per interval with an ETA in a unit, and a last line', async () => {
    const img = join(work, 'progress.img');
    await makeImage(img, [
      ['random', 16],
      ['text', 16],
    ]);
    const r = await run(process.execPath, [BIN.pack, 'pack', img, '--store', join(work, 'store-progress')], {
      env: { THFC_PROGRESS_SECONDS: '0.001' },
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('pack progress: '));
    expect(lines.length, r.stderr).toBeGreaterThan(1);
    expect(lines[0]).toMatch(/^pack progress: \d+% [\d.]+ [KM]iB\/32\.0 MiB [\d.]+ MB\/s ETA (\d+s|\d+m\d\ds)$/);
    expect(lines.at(-1)).toMatch(/^pack progress: done, 32\.0 MiB in \d+s \([\d.]+ MB\/s\)$/);
    expect(r.stderr).not.toContain('\r');
    const json = await run(process.execPath, [BIN.pack, 'pack', img, '--store', join(work, 'store-json'), '--json'], {
      env: { THFC_PROGRESS_SECONDS: '0.001' },
      timeoutMs: 120_000,
    });
    expect(json.stderr).toBe('');
  }, 180_000);

  it('--fill logs its progress every interval, in blocks, with an ETA', async () => {
    const fillMnt = join(work, 'mnt-fill');
    await mkdir(fillMnt);
    const log = join(work, 'fill-log.txt');
    const args = [`${server.url}ops.idx`, '--cache', join(work, 'cache-fill'), '--fill', '--no-prefetch'];
    const r = await run(process.execPath, [BIN.httpstorged, fillMnt, ...args, '--prefetch-rate', '1M', '--log', log], {
      env: { THFC_PROGRESS_SECONDS: '0.2' },
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const fill = new TestMount(fillMnt, log);
    try {
      await waitUntil(undefined, 'the fill', async () => (await fill.logText()).includes('fill of ops done'), 60_000);
      const text = await fill.logText();
      const lines = text.split('\n').filter((l) => /fill of ops: /.test(l));
      expect(lines.length, text).toBeGreaterThan(1);
      expect(lines[0]).toMatch(/fill of ops: \d+% \d+\/\d+ blocks, [\d.]+ blocks\/s ETA (\d+s|-)$/);
    } finally {
      await fill.stop();
    }
  }, 90_000);
});
