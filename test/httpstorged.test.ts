import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeIndex, decodeVerified } from '@thfc/format';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { isMounted, readRange, TestMount } from './support/mounts.js';
import { BIN, node, ROOT, run, sha256, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * httpstorged end to end: real FUSE mounts of images served by real HTTP
 * servers on loopback, read only from child processes.
 */
const MiB = 1024 * 1024;
let work: string;
let cleanupWork: () => Promise<void>;
let big: string; // ~320 MiB with zero regions
let small: string; // 24 MiB
let store: string;
let server: StaticServer;
const mounts: TestMount[] = [];
let n = 0;

async function fresh(): Promise<{ mnt: string; cache: string; log: string }> {
  const i = ++n;
  const mnt = join(work, `mnt${i}`);
  await mkdir(mnt);
  return { mnt, cache: join(work, `cache${i}`), log: join(work, `log${i}.txt`) };
}

async function mount(args: string[]) {
  const f = await fresh();
  const { mount, result } = await TestMount.start(f.mnt, f.log, [...args, '--cache', f.cache]);
  mounts.push(mount);
  return { ...f, mount, result };
}

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-e2e-'));
  big = join(work, 'big.img');
  small = join(work, 'small.img');
  await makeImage(big, [
    ['text', 64],
    ['zero', 64],
    ['random', 32],
    ['text', 64],
    ['zero', 64],
    ['random', 32],
  ]);
  await makeImage(small, [
    ['text', 8],
    ['zero', 4],
    ['random', 4],
    ['text', 8],
  ]);
  store = join(work, 'store');
  for (const img of [big, small]) {
    const r = await node(BIN.pack, ['pack', img, '--store', store, '--json']);
    expect(r.code, r.stderr).toBe(0);
  }
  server = await new StaticServer(store).start();
}, 180_000);

afterEach(async () => {
  for (const m of mounts.splice(0)) await m.stop();
});

afterAll(async () => {
  await server?.kill();
  await cleanupWork?.();
});

describe('httpstorged', () => {
  it('a multi-hundred-MiB image with zero regions reads back byte-identical', async () => {
    const { mnt, result } = await mount([`${server.url}big.idx`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/mounted/);
    expect((await stat(join(mnt, 'big'))).size).toBe((await stat(big)).size);
    expect(await sha256(join(mnt, 'big'))).toBe(await sha256(big));
  }, 180_000);

  it('several processes doing concurrent random reads all get the right bytes', async () => {
    const { mnt, result } = await mount([`${server.url}big.idx`, `${server.url}small.idx`]);
    expect(result.code, result.stderr).toBe(0);
    const reader = join(ROOT, 'test/support/random-reader.mjs');
    const runs = await Promise.all([
      ...[1, 2, 3].map((seed) => node(reader, [join(mnt, 'big'), big, '60', String(seed)], { timeoutMs: 120_000 })),
      node(reader, [join(mnt, 'small'), small, '60', '9'], { timeoutMs: 120_000 }),
    ]);
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
  }, 180_000);

  it('offline: a second mount with the server gone serves every block read before from the cache', async () => {
    const own = await new StaticServer(store).start();
    const url = `${own.url}small.idx`;
    const first = await mount([url]);
    expect(first.result.code, first.result.stderr).toBe(0);
    const want = await readFile(small);
    const ranges = [
      [0, 600_000],
      [9 * MiB, 300_000],
      [12 * MiB + 5, 1000],
    ] as const;
    for (const [off, len] of ranges) {
      const r = await readRange(join(first.mnt, 'small'), off, len);
      expect(r.ok && Buffer.compare(r.bytes, want.subarray(off, off + len)) === 0).toBe(true);
    }
    await first.mount.stop();
    await own.kill();
    const { mount: m2, result } = await TestMount.start(first.mnt, `${first.log}.2`, [
      url,
      '--cache',
      first.cache,
      '--offline',
    ]);
    mounts.push(m2);
    expect(result.code, result.stderr).toBe(0);
    for (const [off, len] of ranges) {
      const r = await readRange(join(first.mnt, 'small'), off, len);
      expect(r.ok && Buffer.compare(r.bytes, want.subarray(off, off + len)) === 0).toBe(true);
    }
    const never = await readRange(join(first.mnt, 'small'), 20 * MiB, 4096);
    expect(never).toEqual({ ok: false, error: 'EIO' });
    expect(await m2.logText()).toMatch(/from cache/);
  }, 120_000);

  it('a mirror killed mid-read: reads fail over to the next mirror and stay right', async () => {
    const a = await new StaticServer(store).start();
    const b = await new StaticServer(store).start();
    let killed = false;
    a.fault = (_p, count) => {
      if (count === 40 && !killed) {
        killed = true;
        void a.kill();
        return { kind: 'reset' };
      }
      return undefined;
    };
    const { mnt, mount: m, result } = await mount([`${server.url}big.idx`, '--mirror', a.url, '--mirror', b.url]);
    expect(result.code, result.stderr).toBe(0);
    expect(await sha256(join(mnt, 'big'))).toBe(await sha256(big));
    expect(killed).toBe(true);
    expect(b.requests).toBeGreaterThan(0);
    const s = await m.stats();
    expect(s.images[0]?.readErrors).toBe(0);
    await b.kill();
  }, 180_000);

  it('a mirror serving a corrupt block: detected, the other mirror used, the cache not poisoned', async () => {
    const idx = decodeIndex(await readFile(join(store, 'small.idx'))).index;
    const ref = idx.ref(0);
    if (!ref) throw new Error('block 0 should hold data');
    const a = await new StaticServer(store).start();
    const b = await new StaticServer(store).start();
    a.fault = (p) => (p.endsWith(ref.id) ? { kind: 'corrupt' } : undefined);
    const {
      mnt,
      cache,
      mount: m,
      result,
    } = await mount([`${server.url}small.idx`, '--mirror', a.url, '--mirror', b.url, '--readahead', '0']);
    expect(result.code, result.stderr).toBe(0);
    const r = await readRange(join(mnt, 'small'), 0, 4096);
    const want = (await readFile(small)).subarray(0, 4096);
    expect(r.ok && Buffer.compare(r.bytes, want) === 0).toBe(true);
    // The cache holds the decoded block: a raw entry of the block's length that hashes to its name.
    const cached = await readFile(join(cache, 'blocks', ref.id.slice(0, 2), ref.id));
    expect(() => decodeVerified({ ...ref, codec: 'none', storedSize: ref.size }, cached, 'cache')).not.toThrow();
    expect(await m.logText()).toMatch(/corrupt/);
    const s = await m.stats();
    const mirrors = s.images[0]?.mirrors as { url: string; errors: number; state: string }[];
    expect(mirrors.find((x) => x.url.startsWith(a.url.slice(0, -1)))?.errors).toBeGreaterThan(0);
    await a.kill();
    await b.kill();
  }, 60_000);

  it('all mirrors down: EIO within the bound, not a hang', async () => {
    const dead = await new StaticServer(store).start();
    const deadUrl = dead.url;
    await dead.kill();
    const hang = await new StaticServer(store).start();
    hang.fault = (p) => (p.includes('/blocks/') ? { kind: 'delay', ms: 60_000 } : undefined);
    const { mnt, result } = await mount([
      join(store, 'small.idx'),
      '--mirror',
      deadUrl,
      '--mirror',
      hang.url,
      '--timeout',
      '1',
      '--retries',
      '1',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const started = Date.now();
    const r = await readRange(join(mnt, 'small'), 0, 4096);
    const ms = Date.now() - started;
    expect(r).toEqual({ ok: false, error: 'EIO' });
    expect(ms).toBeLessThan(8_000); // bound: timeout 1 s × 1 round × 2 mirrors, plus backoff and start-up
    await hang.kill();
  }, 60_000);

  it('--trust: a tampered or unsigned index is refused with a clear message; a signed one mounts', async () => {
    const { dir, cleanup } = await tempDir('thfc-trust-');
    try {
      const key = join(dir, 'pub.key');
      expect((await node(BIN.pack, ['keygen', key])).code).toBe(0);
      const signedStore = join(dir, 'store');
      await mkdir(signedStore);
      await copyFile(join(store, 'small.idx'), join(signedStore, 'small.idx'));
      const unsigned = join(signedStore, 'small.idx');
      const f1 = await mount([unsigned, '--mirror', store, '--trust', `${key}.pub`]);
      expect(f1.result.code).toBe(4);
      expect(f1.result.stderr).toMatch(/refusing to mount small .*not signed/);
      expect(await isMounted(f1.mnt)).toBe(false);
      expect((await node(BIN.pack, ['sign', unsigned, '--key', key])).code).toBe(0);
      const ok = await mount([unsigned, '--mirror', store, '--trust', `${key}.pub`]);
      expect(ok.result.code, ok.result.stderr).toBe(0);
      const text = await readFile(unsigned, 'utf8');
      const tampered = join(dir, 'tampered.idx');
      await writeFile(
        tampered,
        text.replace(/^size (\d+)$/m, (_m, s: string) => `size ${Number(s) - 1}`),
      );
      const bad = await mount([tampered, '--mirror', store, '--trust', `${key}.pub`]);
      expect(bad.result.code).toBe(4);
      expect(bad.result.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.result.stderr).toMatch(/tampered\.idx: line \d+ \(end\): digest does not match/);
      const other = join(dir, 'other.key');
      await node(BIN.pack, ['keygen', other]);
      const untrusted = await mount([unsigned, '--mirror', store, '--trust', `${other}.pub`]);
      expect(untrusted.result.code).toBe(4);
      expect(untrusted.result.stderr).toMatch(/signed only by untrusted keys/);
    } finally {
      await cleanup();
    }
  }, 60_000);

  it('--cache-size: a full read stays within the limit and still reads right', async () => {
    const { mnt, cache, result } = await mount([`${server.url}small.idx`, '--cache-size', '4M']);
    expect(result.code, result.stderr).toBe(0);
    expect(await sha256(join(mnt, 'small'))).toBe(await sha256(small));
    let total = 0;
    for (const shard of await readdir(join(cache, 'blocks'))) {
      for (const f of await readdir(join(cache, 'blocks', shard)))
        total += (await stat(join(cache, 'blocks', shard, f))).size;
    }
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(4 * MiB);
  }, 60_000);

  it('SIGTERM unmounts cleanly; a stale mount from kill -9 is cleared by the next mount', async () => {
    const f = await mount([`${server.url}small.idx`]);
    expect(f.result.code, f.result.stderr).toBe(0);
    const pid = (await f.mount.stats()).pid;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && (await isMounted(f.mnt)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await isMounted(f.mnt)).toBe(false);
    // The mount goes first; the daemon then seals its cache and logs `unmounted`.
    await waitUntil(undefined, 'the unmounted line', async () =>
      /SIGTERM: unmounting[\s\S]*unmounted/.test(await f.mount.logText()),
    );

    const g = await mount([`${server.url}small.idx`]);
    process.kill((await g.mount.stats()).pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const stale = await run('ls', [g.mnt]);
    expect(stale.stderr).toMatch(/Transport endpoint is not connected/);
    const again = await TestMount.start(g.mnt, `${g.log}.2`, [`${server.url}small.idx`, '--cache', g.cache]);
    mounts.push(again.mount);
    expect(again.result.code, again.result.stderr).toBe(0);
    expect(await again.mount.logText()).toMatch(/cleared a stale mount/);
    const r = await readRange(join(g.mnt, 'small'), 0, 100);
    expect(r.ok).toBe(true);
  }, 60_000);

  it('-f with its output gone (| head): the daemon keeps serving right bytes and unmounts cleanly at umount', async () => {
    // Before, the first log line into the closed pipe was an uncaught EPIPE: the daemon died and left a stale mount.
    const f = await fresh();
    const child = spawn(
      process.execPath,
      [BIN.httpstorged, '-f', f.mnt, `${server.url}small.idx`, '--cache', f.cache, '--verbose'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitUntil(undefined, `the -f mount at ${f.mnt}`, () => isMounted(f.mnt));
      expect(await isMounted(f.mnt)).toBe(true);
      child.stdout.destroy();
      child.stderr.destroy();
      // --verbose logs a line per fetch: every block read now writes into the closed pipe.
      expect(await sha256(join(f.mnt, 'small'))).toBe(await sha256(small));
      const u = await node(BIN.httpstorged, ['umount', f.mnt]);
      expect(u.code, u.stderr).toBe(0);
      expect(await exited).toBe(130); // stopped by umount's SIGTERM, as every signalled command: 130
      expect(await isMounted(f.mnt)).toBe(false);
    } finally {
      if (await isMounted(f.mnt)) await run('fusermount', ['-u', '-z', f.mnt]);
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('bad URLs, a missing mountpoint and a mountpoint in use each get a clear error', async () => {
    const f = await fresh();
    const cases: [string[], number, RegExp][] = [
      [[f.mnt, 'ftp://example/x.idx'], 2, /unsupported scheme ftp:/],
      [[f.mnt, 'http://'], 2, /bad index URL/],
      [[f.mnt, `${server.url}store-does-not-exist.idx`], 3, /HTTP 404/],
      [[join(work, 'no-such-dir'), `${server.url}small.idx`], 3, /does not exist/],
      [[f.mnt, `${server.url}small.idx`, '--mirror', 'gopher://x'], 2, /bad mirror URL/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = await node(BIN.httpstorged, [...args, '--log', f.log, '--cache', f.cache]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const ok = await mount([`${server.url}small.idx`]);
    expect(ok.result.code).toBe(0);
    const busy = await node(BIN.httpstorged, [ok.mnt, `${server.url}small.idx`, '--log', f.log]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/in use/);
  }, 60_000);
});
