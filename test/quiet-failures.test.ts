import { copyFile, cp, mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blockPath, decodeIndex } from '@thfc/format';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { isMounted, readRange, TestMount } from './support/mounts.js';
import { BIN, node, run, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * Failures that used to pass without a word, or with the wrong one (issue 13
 * §4 and §5): a signature that no longer verifies, an index nothing
 * authenticates, a corrupt cached index, a block --offline cannot fetch, an
 * EIO only the kernel's read-ahead hit; through real mounts of a store served
 * on loopback.
 */
const K = 1024;
let work: string;
let cleanupWork: () => Promise<void>;
let store: string;
let server: StaticServer;
let key: string;
let image: Buffer;
const mounts: TestMount[] = [];
let n = 0;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-quiet-'));
  store = join(work, 'store');
  const img = join(work, 'small.img');
  await makeImage(img, [
    ['text', 2],
    ['zero', 1],
    ['random', 1],
  ]);
  expect((await node(BIN.pack, ['pack', img, '--store', store])).code).toBe(0);
  image = await readFile(img);
  key = join(work, 'release.key');
  expect((await node(BIN.pack, ['keygen', key])).code).toBe(0);
  server = await new StaticServer(store).start();
}, 60_000);

afterEach(async () => {
  for (const m of mounts.splice(0)) await m.stop();
});

afterAll(async () => {
  await server?.kill();
  await cleanupWork?.();
});

async function mount(args: string[], cache = join(work, `cache${n + 1}`)) {
  const i = ++n;
  const mnt = join(work, `mnt${i}`);
  await mkdir(mnt);
  const { mount, result } = await TestMount.start(mnt, join(work, `log${i}.txt`), [...args, '--cache', cache]);
  mounts.push(mount);
  return { mnt, mount, result, cache };
}

describe('signatures and cached indexes that failed quietly', () => {
  it('a signature that no longer verifies refuses the mount (4), with or without --trust, unless allowed', async () => {
    const signed = join(work, 'signed', 'small.idx');
    await mkdir(join(work, 'signed'), { recursive: true });
    await copyFile(join(store, 'small.idx'), signed);
    expect((await node(BIN.pack, ['sign', signed, '--key', key])).code).toBe(0);
    // Damage the signature itself (one base64 digit of its last field): the index body is untouched.
    const text = await readFile(signed, 'latin1');
    const damaged = text.replace(
      /^(sig ed25519 \S+ \S+ )(.)/m,
      (_m, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'),
    );
    expect(damaged).not.toBe(text);
    await writeFile(signed, damaged, 'latin1');
    const inspect = await node(BIN.pack, ['inspect', signed]);
    expect(inspect.stdout).toMatch(/INVALID/);

    for (const trust of [[], ['--trust', `${key}.pub`]]) {
      const r = await mount([signed, '--mirror', store, ...trust]);
      expect(r.result.code, r.result.stderr).toBe(4);
      expect(r.result.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.result.stderr).toMatch(
        /index small \(.*small\.idx\): the signature by key [0-9a-f]{16} does not verify: the index changed after it was signed; refusing to mount it \(--allow-invalid-signature mounts it anyway\)/,
      );
      expect(await isMounted(r.mnt)).toBe(false);
    }
    const allowed = await mount([signed, '--mirror', store, '--allow-invalid-signature']);
    expect(allowed.result.code, allowed.result.stderr).toBe(0);
    expect(await allowed.mount.logText()).toMatch(/does not verify.*mounting it anyway \(--allow-invalid-signature\)/);
    // Allowing it is not trusting it.
    const trusted = await mount([signed, '--mirror', store, '--allow-invalid-signature', '--trust', `${key}.pub`]);
    expect(trusted.result.code).toBe(4);
  }, 60_000);

  it('without --trust the log and stats (text and --json) say the index is not authenticated', async () => {
    const { mnt, mount: m, result } = await mount([`${server.url}small.idx`]);
    expect(result.code, result.stderr).toBe(0);
    expect(await m.logText()).toMatch(/INFO index small is not authenticated \(no --trust or --trust-store\)/);
    const json = await m.stats();
    expect(json.images[0]).toMatchObject({ authenticated: false, signer: null });
    const text = await node(BIN.httpstorged, ['stats', mnt]);
    expect(text.stdout).toContain('  trust    not authenticated (no --trust or --trust-store)');
  }, 60_000);

  it('a corrupt cached index names the cached file, says it is the cached copy, and how to clear it', async () => {
    const url = `${server.url}small.idx`;
    const first = await mount([url]);
    expect(first.result.code, first.result.stderr).toBe(0);
    await first.mount.stop();
    const file = (await readdir(join(first.cache, 'indexes'))).find((f) => f.endsWith('.idx'));
    const cached = join(first.cache, 'indexes', file as string);
    const text = await readFile(cached, 'latin1');
    await writeFile(cached, text.replace(/\n[0-9a-f]{40,} /, '\nnot-a-block-id '), 'latin1');
    const r = await mount([url, '--offline'], first.cache);
    expect(r.result.code).toBe(4);
    expect(r.result.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.result.stderr).toContain(`the cached copy of ${url} (${cached}): line `);
    expect(r.result.stderr).toContain(`remove it (rm ${cached}) and mount online to fetch it again`);
  }, 60_000);
});

describe('messages and counts', () => {
  it('--offline: a block that is not cached, or a corrupt entry, says it cannot be fetched offline', async () => {
    const url = `${server.url}small.idx`;
    const first = await mount([url, '--readahead', '0']);
    expect(first.result.code, first.result.stderr).toBe(0);
    expect((await readRange(join(first.mnt, 'small'), 0, 4096)).ok).toBe(true);
    await first.mount.stop();
    const [entry] = (await readdir(join(first.cache, 'blocks'), { recursive: true })).filter((f) =>
      /[0-9a-f]{40}/.test(f),
    );
    // Same size, other bytes: a corrupt entry (one of another size is only a miss).
    const f = await open(join(first.cache, 'blocks', entry as string), 'r+');
    await f.write('not the block', 10);
    await f.close();
    const off = await mount([url, '--offline'], first.cache);
    expect(off.result.code, off.result.stderr).toBe(0);
    expect(await readRange(join(off.mnt, 'small'), 0, 4096)).toEqual({ ok: false, error: 'EIO' });
    expect(await readRange(join(off.mnt, 'small'), 3 * 1024 * K, 4096)).toEqual({ ok: false, error: 'EIO' });
    const log = await off.mount.logText();
    expect(log).toMatch(/dropped from the cache, it cannot be fetched again offline/);
    expect(log).toMatch(/block [0-9a-f]{40} is not cached and cannot be fetched offline \(--offline\)/);
    expect(log).not.toMatch(/fetching again/);
  }, 60_000);

  it('an EIO only the kernel read-ahead hit counts as a readahead error; one a reader sees as a read error', async () => {
    const ref = decodeIndex(await readFile(join(store, 'small.idx'))).index.ref(1);
    if (!ref) throw new Error('block 1 should hold data');
    const holed = join(work, 'holed');
    await cp(store, holed, { recursive: true });
    await rm(join(holed, blockPath(ref.id)));
    const { mnt, mount: m, result } = await mount([join(holed, 'small.idx'), '--readahead', '0', '--retries', '1']);
    expect(result.code, result.stderr).toBe(0);
    // Block 0, read sequentially: the kernel reads ahead into block 1, which fails; the reader's pages do not.
    const near = await readRange(join(mnt, 'small'), 0, 256 * K);
    expect(near).toEqual({ ok: true, bytes: image.subarray(0, 256 * K) });
    let s = (await m.stats()).images[0] as { readErrors: number; readaheadErrors: number };
    expect(s).toMatchObject({ readErrors: 0 });
    expect(s.readaheadErrors).toBeGreaterThan(0);
    const seen = s.readaheadErrors;
    expect(await readRange(join(mnt, 'small'), 256 * K + 100, 4096)).toEqual({ ok: false, error: 'EIO' });
    s = (await m.stats()).images[0] as { readErrors: number; readaheadErrors: number };
    // The kernel read ahead past block 1 for this reader too (another read-ahead error), then asked again for the
    // reader's page alone: that failure is the one the reader saw.
    expect(s.readErrors).toBe(1);
    expect(s.readaheadErrors).toBeGreaterThanOrEqual(seen - 1);
    const text = await node(BIN.httpstorged, ['stats', mnt]);
    expect(text.stdout).toMatch(/ 1 errors, [1-9]\d* readahead errors;/);
    // O_DIRECT (qemu's cache=none) has no kernel read-ahead: its failure is a read error at once.
    const direct = await run('dd', [
      `if=${join(mnt, 'small')}`,
      'iflag=direct',
      'bs=4096',
      'skip=70',
      'count=1',
      'of=/dev/null',
    ]);
    expect(direct.code).not.toBe(0);
    s = (await m.stats()).images[0] as { readErrors: number; readaheadErrors: number };
    expect(s.readErrors).toBe(2);
  }, 60_000);
});
