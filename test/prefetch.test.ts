import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { appendSignature, blockId, decodeIndex, encodeProfile, parsePrivateKey, parsePublicKey } from '@thfc/format';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { readRange, TestMount } from './support/mounts.js';
import { BIN, node, sha256, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/** Boot profiles and fill, end to end: record → publish → replay, a hostile profile, fill then offline. */
const MiB = 1024 * 1024;
let work: string;
let cleanupWork: () => Promise<void>;
let image: string;
let store: string;
let key: string;
const mounts: TestMount[] = [];
let n = 0;

async function mount(args: string[], cache?: string) {
  const i = ++n;
  const mnt = join(work, `mnt${i}`);
  await mkdir(mnt);
  const c = cache ?? join(work, `cache${i}`);
  const { mount: m, result } = await TestMount.start(mnt, join(work, `log${i}.txt`), [...args, '--cache', c]);
  mounts.push(m);
  expect(result.code, result.stderr).toBe(0);
  return { mnt, cache: c, m };
}

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

type ImageStats = {
  prefetch: { blocks: number; fetched: number; hit: number; pending: number; done: boolean } | null;
  fill: { done: boolean } | null;
  localFraction: number;
};
const stats = async (m: TestMount) => (await m.stats()).images[0] as unknown as ImageStats;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-prefetch-'));
  image = join(work, 'disk.img');
  await makeImage(image, [
    ['text', 6],
    ['zero', 2],
    ['random', 2],
    ['text', 6],
  ]);
  store = join(work, 'store');
  key = join(work, 'publisher.key');
  expect((await node(BIN.pack, ['keygen', key])).code).toBe(0);
  const r = await node(BIN.pack, ['pack', image, '--store', store, '--name', 'disk', '--sign', key]);
  expect(r.code, r.stderr).toBe(0);
}, 60_000);

afterEach(async () => {
  for (const m of mounts.splice(0)) await m.stop();
});

afterAll(async () => {
  await cleanupWork?.();
});

describe('boot profiles', () => {
  it('record → publish → replay: the profile is fetched at mount and the same reads hit it', async () => {
    const server = await new StaticServer(store).start();
    try {
      const profile = join(work, 'recorded.profile');
      const ranges = [
        [0, 300_000],
        [13 * MiB, 200_000],
        [6 * MiB + 7, 1000],
      ] as const;
      const rec = await mount([`${server.url}disk.idx`, '--record-profile', profile, '--readahead', '0']);
      for (const [off, len] of ranges) expect((await readRange(join(rec.mnt, 'disk'), off, len)).ok).toBe(true);
      expect((await rec.m.stop()).code).toBe(0);
      const add = await node(BIN.pack, ['profile', 'add', join(store, 'disk.idx'), profile, '--key', key, '--json']);
      expect(add.code, add.stderr).toBe(0);
      const published = JSON.parse(add.stdout);
      expect(published.blocks).toBe(4); // 0..1 (300 KB spans two 256 KiB blocks), 52, 24

      const replay = await mount([`${server.url}disk.idx`, '--trust', `${key}.pub`, '--readahead', '0']);
      const s = await until(
        () => stats(replay.m),
        (v) => !!v.prefetch?.done,
      );
      expect(s.prefetch).toMatchObject({ blocks: 4, fetched: 4, pending: 0 });
      const want = await readFile(image);
      for (const [off, len] of ranges) {
        const r = await readRange(join(replay.mnt, 'disk'), off, len);
        expect(r.ok && Buffer.compare(r.bytes, want.subarray(off, off + len)) === 0).toBe(true);
      }
      const after = await stats(replay.m);
      expect(after.prefetch?.hit, JSON.stringify(after)).toBe(4);
    } finally {
      await server.kill();
    }
  }, 90_000);

  it('a hostile profile naming blocks outside its index is refused and nothing it names is fetched', async () => {
    const hostile = join(work, 'hostile');
    await mkdir(hostile, { recursive: true });
    await copyFile(join(store, 'disk.idx'), join(hostile, 'disk.idx'));
    const d = decodeIndex(await readFile(join(store, 'disk.idx')));
    const foreign = blockId(Buffer.from('a block of some other image'), 'sha1');
    const first = d.index.ref(0)?.id as string;
    const pem = await readFile(key, 'utf8');
    const pub = parsePublicKey(await readFile(`${key}.pub`, 'utf8'));
    // Signed by the trusted key and bound to the right index: only the block check stands in the way.
    await writeFile(
      join(hostile, 'disk.profile'),
      appendSignature(encodeProfile('disk', d.digest, [first, foreign]), parsePrivateKey(pem), pub),
    );
    const server = await new StaticServer(hostile).start();
    try {
      const m = await mount([`${server.url}disk.idx`, '--mirror', store, '--trust', `${key}.pub`]);
      // The profile is fetched beside the first reads, off the mount's critical path: its verdict may follow "mounted".
      const log = await until(
        () => m.m.logText(),
        (t) => t.includes('boot profile ignored'),
        10_000,
      );
      expect(log).toMatch(/boot profile ignored: .*does not reference/);
      expect((await stats(m.m)).prefetch).toBeNull();
      await new Promise((r) => setTimeout(r, 300));
      expect(server.paths.filter((p) => p.includes(foreign))).toEqual([]);
    } finally {
      await server.kill();
    }
  }, 60_000);

  it('--fill caches the whole image in the background; the mount then works offline', async () => {
    const server = await new StaticServer(store).start();
    const url = `${server.url}disk.idx`;
    const first = await mount([url, '--fill', '--no-prefetch']);
    const s = await until(
      () => stats(first.m),
      (v) => v.localFraction === 1 && !!v.fill?.done,
    );
    expect(s.localFraction).toBe(1);
    await first.m.stop();
    await server.kill();
    const offline = await mount([url, '--offline'], first.cache);
    expect(await sha256(join(offline.mnt, 'disk'))).toBe(await sha256(image));
  }, 90_000);
});
