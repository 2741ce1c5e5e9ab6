import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { isMounted, TestMount } from './support/mounts.js';
import { BIN, execFileP, node, run, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * The disk cache trusted by identity (issue 12 §3), through real mounts: a
 * cache file changed while mounted (in place, or replaced by a rename),
 * changed while unmounted after a clean stop and after a crash, a daemon
 * killed in the middle of a cold read, and a damaged seal. Each ends with cmp
 * of the whole image, read by a child process after dropping the mount's
 * page cache, and a log line naming each changed entry.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let image: string;
let server: StaticServer;
const mounts: TestMount[] = [];
let n = 0;
const ALTERED = 5;

interface CacheStatus {
  pid: number;
  cache: { sealed: number; checked: number; changed: number; blocks: number };
  images: { localBlocks: number; uniqueBlocks: number; blocksFetched: number }[];
}

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-cache-trust-'));
  image = join(work, 'disk.img');
  await makeImage(image, [
    ['text', 6],
    ['zero', 2],
    ['random', 4],
    ['text', 6],
  ]);
  const store = join(work, 'store');
  const r = await node(BIN.pack, ['pack', image, '--store', store, '--name', 'disk']);
  expect(r.code, r.stderr).toBe(0);
  server = await new StaticServer(store).start();
}, 120_000);

afterEach(async () => {
  for (const m of mounts.splice(0)) await m.stop();
});

afterAll(async () => {
  await server?.kill();
  await cleanupWork?.();
});

/** A fresh mountpoint and cache directory. */
async function fresh(): Promise<{ mnt: string; cache: string }> {
  const i = ++n;
  const mnt = join(work, `mnt${i}`);
  await mkdir(mnt);
  return { mnt, cache: join(work, `cache${i}`) };
}

async function mount(mnt: string, cache: string, extra: string[] = []): Promise<TestMount> {
  const log = join(work, `log${++n}.txt`);
  const { mount: m, result } = await TestMount.start(mnt, log, [
    `${server.url}disk.idx`,
    '--cache',
    cache,
    '--no-prefetch',
    ...extra,
  ]);
  mounts.push(m);
  expect(result.code, result.stderr).toBe(0);
  return m;
}

const status = async (m: TestMount) => (await m.stats()) as unknown as CacheStatus;

/** Drops a file's pages from the page cache (a mounted image, so the next read reaches the daemon; a cache file). */
async function dropPages(path: string): Promise<void> {
  await execFileP('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** cmp of the whole mounted image against the original, from a child process, its page cache dropped first. */
async function cmpImage(mnt: string): Promise<void> {
  await dropPages(join(mnt, 'disk'));
  const r = await run('cmp', [join(mnt, 'disk'), image], { timeoutMs: 120_000 });
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
}

/** Every block file of the cache, by id. */
async function entries(cache: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const root = join(cache, 'blocks');
  for (const shard of await readdir(root)) {
    for (const name of await readdir(join(root, shard))) {
      if (/^[0-9a-f]{40}$/.test(name)) out.set(name, join(root, shard, name));
    }
  }
  return out;
}

/** Waits until every block of the image is on disk (the write-behind has landed). */
async function allCached(m: TestMount): Promise<void> {
  await waitUntil(undefined, 'every block cached', async () => {
    const s = (await status(m)).images[0];
    return s !== undefined && s.localBlocks === s.uniqueBlocks;
  });
}

/** Some entries to change, spread over the cache. */
async function pick(cache: string, count = ALTERED): Promise<[string, string][]> {
  const all = [...(await entries(cache))].sort();
  const step = Math.floor(all.length / count);
  return Array.from({ length: count }, (_, i) => all[i * step] as [string, string]);
}

/** Overwrites 64 bytes in the middle of the file, in place (same inode). */
async function editInPlace(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(Buffer.alloc(64, 'X'), 0, 64, 100_000);
  } finally {
    await fh.close();
  }
  await dropPages(path);
}

/** Puts a changed copy under the name by a rename: another inode, as another writer would leave it. */
async function replaceByRename(path: string): Promise<void> {
  const bytes = await readFile(path);
  bytes.fill(0x59, 50_000, 50_064);
  await writeFile(`${path}.swap`, bytes);
  await rename(`${path}.swap`, path);
  await dropPages(path);
}

/** Stops the daemon cleanly (umount) and waits until its process is gone, so its seal is written. */
async function cleanStop(m: TestMount): Promise<void> {
  const { pid } = await status(m);
  const r = await m.stop();
  expect(r.code, r.stderr).toBe(0);
  await waitUntil(undefined, `daemon ${pid} to exit`, async () => !alive(pid));
  mounts.splice(mounts.indexOf(m), 1);
}

/** kill -9 of the daemon; the stale mount it leaves is detached. */
async function crash(m: TestMount, mnt: string): Promise<void> {
  const { pid } = await status(m);
  process.kill(pid, 'SIGKILL');
  await waitUntil(undefined, `daemon ${pid} to die`, async () => !alive(pid));
  await run('fusermount', ['-u', '-z', mnt]);
  expect(await isMounted(mnt)).toBe(false);
  mounts.splice(mounts.indexOf(m), 1);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every changed entry is named by a log line (the change seen, or the corrupt entry dropped). */
function expectNamed(log: string, ids: string[]): void {
  for (const id of ids) expect(log, `no log line names ${id}`).toMatch(new RegExp(`(cache entry|block) ${id} `));
}

describe('a cache trusted by identity', () => {
  it('a file edited in place while mounted is caught, logged and fetched again', async () => {
    const { mnt, cache } = await fresh();
    const m = await mount(mnt, cache);
    await cmpImage(mnt);
    await allCached(m);
    const altered = await pick(cache);
    for (const [, path] of altered) await editInPlace(path);
    await cmpImage(mnt);
    const log = await m.logText();
    expectNamed(
      log,
      altered.map(([id]) => id),
    );
    expect((await status(m)).cache.changed).toBeGreaterThanOrEqual(ALTERED);
  }, 120_000);

  it('a file replaced by a rename while mounted is caught, logged and fetched again (before: 26 of 30 served wrong)', async () => {
    const { mnt, cache } = await fresh();
    const m = await mount(mnt, cache);
    await cmpImage(mnt); // the cold read serves blocks from memory: most files this daemon wrote are never opened
    await allCached(m);
    const altered = await pick(cache);
    for (const [, path] of altered) await replaceByRename(path);
    await cmpImage(mnt);
    expectNamed(
      await m.logText(),
      altered.map(([id]) => id),
    );
  }, 120_000);

  it('after a clean stop, a fresh daemon trusts the sealed entries without a hash, and checks the ones edited meanwhile', async () => {
    const { mnt, cache } = await fresh();
    const first = await mount(mnt, cache);
    await cmpImage(mnt);
    await allCached(first);
    await cleanStop(first);
    expect(await readFile(join(cache, 'seal'), 'latin1')).toMatch(/^thfc-cache-seal 1\nentries \d+\n/);
    const total = (await entries(cache)).size;
    const altered = await pick(cache);
    for (const [, path] of altered) await editInPlace(path);
    const second = await mount(mnt, cache);
    await cmpImage(mnt);
    const log = await second.logText();
    expect(log).toMatch(new RegExp(`the seal vouches for ${total} entries`));
    expectNamed(
      log,
      altered.map(([id]) => id),
    );
    // Only the edited entries were hashed: every other one was trusted by its identity.
    expect((await status(second)).cache).toMatchObject({ sealed: total, checked: ALTERED, changed: ALTERED });
  }, 120_000);

  it('after a crash (kill -9 of a later daemon), entries edited meanwhile are still caught', async () => {
    const { mnt, cache } = await fresh();
    const first = await mount(mnt, cache);
    await cmpImage(mnt);
    await allCached(first);
    await cleanStop(first);
    const second = await mount(mnt, cache);
    await cmpImage(mnt);
    await crash(second, mnt);
    const altered = await pick(cache);
    for (const [, path] of altered) await editInPlace(path);
    const third = await mount(mnt, cache);
    await cmpImage(mnt);
    const log = await third.logText();
    expect(log).toMatch(/httpstorged pid \d+ stopped without a clean stop \(killed or crashed\)/);
    expectNamed(
      log,
      altered.map(([id]) => id),
    );
    // A daemon killed in this boot voids nothing: identities still tell what changed.
    expect((await status(third)).cache).toMatchObject({ checked: ALTERED, changed: ALTERED });
  }, 120_000);

  it('kill -9 in the middle of a cold read, then a remount: nothing it left is trusted unchecked', async () => {
    const { mnt, cache } = await fresh();
    const first = await mount(mnt, cache, ['--readahead', '0', '--connections', '1']);
    server.fault = (p) => (p.includes('/blocks/') ? { kind: 'delay', ms: 40 } : undefined);
    const reader = spawn('cmp', [join(mnt, 'disk'), image], { stdio: 'ignore' });
    let unique = 0;
    try {
      await waitUntil(undefined, 'a few blocks fetched', async () => {
        const s = (await status(first)).images[0];
        unique = s?.uniqueBlocks ?? 0;
        return (s?.blocksFetched ?? 0) >= 8;
      });
      await crash(first, mnt);
    } finally {
      server.fault = () => undefined;
      reader.kill('SIGKILL');
    }
    const left = await entries(cache);
    expect(left.size).toBeGreaterThan(0);
    expect(left.size).toBeLessThan(unique); // a part of the image
    // What a machine crash could leave of a block being written: its length, zeros.
    const [tornId, tornPath] = [...left][0] as [string, string];
    await writeFile(tornPath, Buffer.alloc(statSync(tornPath).size));
    await dropPages(tornPath);
    const second = await mount(mnt, cache);
    await cmpImage(mnt);
    const log = await second.logText();
    expect(log).toMatch(/no seal: every entry is checked on first use/);
    expectNamed(log, [tornId]);
    expect((await status(second)).cache).toMatchObject({ sealed: 0, checked: left.size });
  }, 120_000);

  it('a damaged seal is not trusted: one log line, and every entry is checked on first use', async () => {
    const { mnt, cache } = await fresh();
    const first = await mount(mnt, cache);
    await cmpImage(mnt);
    await allCached(first);
    await cleanStop(first);
    const total = (await entries(cache)).size;
    const [[id, path]] = (await pick(cache, 1)) as [[string, string]];
    await editInPlace(path);
    // Vouch for the edited file in the seal, without mending its end digest: damage, as a torn write leaves it.
    const st = statSync(path, { bigint: true });
    const text = await readFile(join(cache, 'seal'), 'latin1');
    const forged = text.replace(
      new RegExp(`^${id} .*$`, 'm'),
      `${id} ${st.dev} ${st.ino} ${st.size} ${st.ctimeNs} ${st.mtimeNs}`,
    );
    expect(forged).not.toBe(text);
    await writeFile(join(cache, 'seal'), forged, 'latin1');
    const second = await mount(mnt, cache);
    await cmpImage(mnt);
    const log = await second.logText();
    expect(log.split('\n').filter((l) => /damaged seal/.test(l))).toEqual([
      expect.stringMatching(/line \d+ \(end\): digest does not match the seal.*every entry is checked on first use/),
    ]);
    expectNamed(log, [id]);
    expect((await status(second)).cache).toMatchObject({ sealed: 0, checked: total });
  }, 120_000);
});
