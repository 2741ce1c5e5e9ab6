import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeIndex } from '@thfc/format';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { TestMount } from './support/mounts.js';
import { BIN, node, sha256, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * Retained versions seen from a client (issue 15 §1): a mount pinned to a
 * digest gets exactly that version from the store's versions/, whatever
 * NAME.idx says; a pin the store cannot honour, or a retained copy with other
 * bytes, is refused (exit 4); a pinned version once fetched mounts offline.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let store: string;
let server: StaticServer;
const v: { image: string; digest: string; sum: string }[] = [];
const mounts: TestMount[] = [];
let n = 0;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-versions-'));
  store = join(work, 'store');
  for (const [i, parts] of [
    [
      ['text', 3],
      ['zero', 1],
    ],
    [
      ['random', 2],
      ['text', 2],
    ],
  ].entries() as IterableIterator<[number, [kind: 'text' | 'zero' | 'random', mib: number][]]>) {
    const image = join(work, `v${i + 1}.img`);
    await makeImage(image, parts);
    const r = await node(BIN.pack, ['pack', image, '--store', store, '--name', 'disk', '--json']);
    expect(r.code, r.stderr).toBe(0);
    v.push({ image, digest: JSON.parse(r.stdout).digest, sum: await sha256(image) });
  }
  server = await new StaticServer(store).start();
}, 120_000);

afterEach(async () => {
  for (const m of mounts.splice(0)) await m.stop();
});

afterAll(async () => {
  await server?.kill();
  await cleanupWork?.();
});

async function mount(args: string[], cache = join(work, `cache${++n}`)) {
  const mnt = join(work, `mnt${++n}`);
  await mkdir(mnt);
  const started = await TestMount.start(mnt, join(work, `log${n}.txt`), [...args, '--cache', cache, '--no-prefetch']);
  mounts.push(started.mount);
  return { ...started, mnt, cache };
}

describe('pinned mounts', () => {
  it('URL#sha256:<v1> mounts v1 from versions/ while NAME.idx holds v2, and says so', async () => {
    const [v1, v2] = v as [(typeof v)[0], (typeof v)[0]];
    const m = await mount([`${server.url}disk.idx#${v1.digest}`]);
    expect(m.result.code, m.result.stderr).toBe(0);
    expect(await sha256(join(m.mnt, 'disk'))).toBe(v1.sum);
    const stats = await m.mount.stats();
    expect(stats.images[0]?.digest).toBe(v1.digest);
    expect(stats.images[0]?.pinned).toBe(v1.digest);
    expect(await m.mount.logText()).toContain(`pinned to ${v1.digest}; the store's latest is ${v2.digest}`);
    expect(server.paths.some((p) => p.includes('versions/disk/versions.json'))).toBe(true);

    // Once fetched, the pinned version mounts with no network at all.
    await m.mount.stop();
    const offline = await mount([`${server.url}disk.idx`, '--pin', v1.digest, '--offline'], m.cache);
    expect(offline.result.code, offline.result.stderr).toBe(0);
    expect(await sha256(join(offline.mnt, 'disk'))).toBe(v1.sum);
  }, 90_000);

  it('--pin of the latest mounts it as usual', async () => {
    const v2 = v[1] as (typeof v)[0];
    const m = await mount([`${server.url}disk.idx`, '--pin', v2.digest]);
    expect(m.result.code, m.result.stderr).toBe(0);
    expect(await sha256(join(m.mnt, 'disk'))).toBe(v2.sum);
  }, 60_000);

  it('a pin the store cannot honour is refused with exit 4 and one line, and nothing is mounted', async () => {
    const unknown = `sha256:${'ab'.repeat(32)}`;
    const m = await mount([`${server.url}disk.idx#${unknown}`]);
    expect(m.result.code).toBe(4);
    expect(m.result.stderr.trim().split('\n')).toHaveLength(1);
    expect(m.result.stderr).toMatch(/pinned to sha256:abab.*keeps no such version of disk; refusing/);
    const bad = await mount([`${server.url}disk.idx`, '--pin', 'sha256:12']);
    expect(bad.result.code).toBe(2);
    expect(bad.result.stderr).toMatch(/bad pin/);
  }, 60_000);

  it('a retained copy with other bytes (a rollback or freeze attempt) is refused', async () => {
    const [v1, v2] = v as [(typeof v)[0], (typeof v)[0]];
    const hostile = join(work, 'hostile');
    await cp(store, hostile, { recursive: true });
    const list = JSON.parse(await readFile(join(hostile, 'versions/disk/versions.json'), 'utf8'));
    const v1File = list.versions.find((x: { digest: string }) => x.digest === v1.digest).file as string;
    // The mirror serves v2's bytes under v1's retained name.
    await writeFile(join(hostile, 'versions/disk', v1File), await readFile(join(hostile, 'disk.idx')));
    expect(decodeIndex(await readFile(join(hostile, 'disk.idx'))).digest).toBe(v2.digest);
    const evil = await new StaticServer(hostile).start();
    try {
      const m = await mount([`${evil.url}disk.idx#${v1.digest}`]);
      expect(m.result.code).toBe(4);
      expect(m.result.stderr).toMatch(new RegExp(`retained copy ${v1File} holds ${v2.digest}`));
    } finally {
      await evil.kill();
    }
  }, 60_000);

  it('a running daemon notices a newer version (log, stats, .thfc/NAME.update) and keeps serving its own', async () => {
    const [, v2] = v as [(typeof v)[0], (typeof v)[0]];
    const own = join(work, 'store-notice');
    await cp(store, own, { recursive: true });
    const local = await new StaticServer(own).start();
    try {
      const m = await mount([`${local.url}disk.idx`, '--check-interval', '0.3']);
      expect(m.result.code, m.result.stderr).toBe(0);
      const update = join(m.mnt, '.thfc', 'disk.update');
      // Status files are padded with spaces (fuse-adapter.ts): the content is what trim() leaves.
      expect((await readFile(update, 'utf8').catch(() => 'unreadable')).trim()).toBe('');
      const v3Image = join(work, 'v3.img');
      await makeImage(v3Image, [['text', 2]]);
      const packed = await node(BIN.pack, ['pack', v3Image, '--store', own, '--name', 'disk', '--json']);
      expect(packed.code, packed.stderr).toBe(0);
      const v3 = JSON.parse(packed.stdout).digest as string;
      let stats = await m.mount.stats();
      for (let i = 0; i < 100 && !(stats.images[0]?.versionCheck as { update?: unknown })?.update; i++) {
        await new Promise((r) => setTimeout(r, 100));
        stats = await m.mount.stats();
      }
      const check = stats.images[0]?.versionCheck as unknown as { update: { digest: string } | null };
      expect(check.update?.digest).toBe(v3);
      expect(stats.images[0]?.digest).toBe(v2.digest);
      expect((await readFile(update, 'utf8')).trim()).toMatch(new RegExp(`^${v3} \\d{4}-\\S+$`));
      expect(await m.mount.logText()).toContain(`newer version of disk available: ${v3}`);
      expect(await sha256(join(m.mnt, 'disk'))).toBe(v2.sum);
    } finally {
      await local.kill();
    }
  }, 60_000);

  it('httpstorged switch waits while the image is in use (exit 75), then moves to the new version; --auto-switch alone', async () => {
    const [, v2] = v as [(typeof v)[0], (typeof v)[0]];
    const own = join(work, 'store-switch');
    await cp(store, own, { recursive: true });
    const local = await new StaticServer(own).start();
    try {
      const m = await mount([`${local.url}disk.idx`]);
      expect(m.result.code, m.result.stderr).toBe(0);
      const up = await node(BIN.httpstorged, ['switch', m.mnt]);
      expect(up.stdout).toContain('serves the latest version of every image');
      expect(up.code).toBe(0);

      const v3Image = join(work, 'v3-switch.img');
      await makeImage(v3Image, [['text', 1]]);
      const packed = await node(BIN.pack, ['pack', v3Image, '--store', own, '--name', 'disk', '--json']);
      const v3 = JSON.parse(packed.stdout).digest as string;
      // A reader holds the image open: the switch must wait for it, and the reader keeps its bytes.
      const holder = spawn(process.execPath, ['-e', HOLD, join(m.mnt, 'disk')], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((r) => holder.stdout.once('data', () => r()));
      const busy = await node(BIN.httpstorged, ['switch', m.mnt, 'disk']);
      expect(busy.code).toBe(75);
      expect(busy.stderr).toMatch(/in use: a newer version of disk is published/);
      expect((await m.mount.stats()).images[0]?.digest).toBe(v2.digest);
      holder.kill();
      await new Promise((r) => holder.once('close', r));
      let digest: unknown;
      for (let i = 0; i < 100 && digest !== v3; i++) {
        await new Promise((r) => setTimeout(r, 200));
        digest = await m.mount.stats().then(
          (s) => s.images[0]?.digest,
          () => undefined,
        );
      }
      expect(digest).toBe(v3);
      expect(await sha256(join(m.mnt, 'disk'))).toBe(await sha256(v3Image));
      expect(await m.mount.logText()).toContain(`switched disk from ${v2.digest} to ${v3}`);
      await m.mount.stop();

      // --auto-switch: the version check finds v4, and an unused mount moves to it by itself.
      const a = await mount([`${local.url}disk.idx`, '--auto-switch', '--check-interval', '0.3']);
      expect(a.result.code, a.result.stderr).toBe(0);
      const v4Image = join(work, 'v4-switch.img');
      await makeImage(v4Image, [['random', 1]]);
      const v4 = JSON.parse(
        (await node(BIN.pack, ['pack', v4Image, '--store', own, '--name', 'disk', '--json'])).stdout,
      ).digest as string;
      digest = undefined;
      for (let i = 0; i < 150 && digest !== v4; i++) {
        await new Promise((r) => setTimeout(r, 200));
        digest = await a.mount.stats().then(
          (s) => s.images[0]?.digest,
          () => undefined,
        );
      }
      expect(digest).toBe(v4);
      expect(await sha256(join(a.mnt, 'disk'))).toBe(await sha256(v4Image));
    } finally {
      await local.kill();
    }
  }, 120_000);
});

/** A child that opens the file, says so, and holds it until killed. */
const HOLD =
  "const fd=require('fs').openSync(process.argv[1],'r');process.stdout.write('open\\n');setInterval(()=>{},1e6)";
