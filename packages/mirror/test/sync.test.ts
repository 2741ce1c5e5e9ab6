import { cp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  type BlockRef,
  blockPath,
  decodeIndex,
  decodeIndexBody,
  encodeProfile,
  generateSigningKey,
  InputError,
  InterruptedError,
  MirrorUnavailableError,
  UsageError,
} from '@thfc/format';
import { runProfileAdd, runSign, runVerify } from '@thfc/packer';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMirror } from '../src/serve.js';
import { runSync } from '../src/sync.js';
import { packImage, tempDir, testIo, testMirror } from './helpers.js';

let work: string;
let cleanup: () => Promise<void>;
let upstreamStore: string;
let upstream: RunningMirror;
let refs: BlockRef[];
const servers: Server[] = [];
let n = 0;

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * A slow, optionally lossy window onto the upstream mirror: each request is
 * delayed, then forwarded. `noListing` makes it look like a plain web server.
 */
async function slowProxy(delayMs: number, options: { noListing?: boolean } = {}): Promise<string> {
  const server = createServer(async (req, res) => {
    await new Promise((r) => setTimeout(r, delayMs));
    if (options.noListing && req.url === '/index.json') {
      res.writeHead(404).end();
      return;
    }
    try {
      const r = await request(`${upstream.url}${(req.url ?? '/').slice(1)}`);
      res.writeHead(r.statusCode, { 'content-length': r.headers['content-length'] as string });
      for await (const c of r.body) res.write(c);
      res.end();
    } catch {
      res.destroy();
    }
  });
  server.keepAliveTimeout = 60_000;
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

const freshStore = () => join(work, `local${++n}`);

async function blockFiles(store: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const shard of await readdir(join(store, 'blocks')).catch(() => [])) {
    for (const f of await readdir(join(store, 'blocks', shard)).catch(() => [])) if (!f.startsWith('.')) out.add(f);
  }
  return out;
}

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir());
  upstreamStore = join(work, 'upstream');
  // 4 KiB blocks: a few hundred of them, so a sync takes long enough to interrupt.
  await packImage(
    work,
    upstreamStore,
    'img',
    [
      ['t', 1024 * 1024],
      ['z', 64 * 1024],
      ['r', 256 * 1024],
    ],
    {
      blockSize: 4096,
    },
  );
  await packImage(work, upstreamStore, 'small', [['t', 64 * 1024]], { blockSize: 4096, seed: 7 });
  refs = [
    ...decodeIndex(await readFile(join(upstreamStore, 'img.idx')))
      .index.uniqueRefs()
      .values(),
  ];
  upstream = await testMirror({ store: upstreamStore });
}, 60_000);

afterAll(async () => {
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  await upstream?.close();
  await cleanup?.();
});

describe('sync', () => {
  it('replicates every listed index and only the blocks the store lacks; a second pass fetches nothing', async () => {
    const store = freshStore();
    const r = await runSync({ upstream: upstream.url, store }, testIo());
    expect(r.indexes.map((i) => [i.name, i.status])).toEqual([
      ['img', 'updated'],
      ['small', 'updated'],
    ]);
    const img = r.indexes[0];
    expect(img?.blocks).toBe(refs.length);
    expect(img?.fetched).toBe(refs.length);
    expect(r.fetchedBytes).toBeGreaterThan(0);
    expect(await readFile(join(store, 'img.idx'))).toEqual(await readFile(join(upstreamStore, 'img.idx')));
    const zst = join(store, 'img.idx.zst');
    expect(await decodeIndexBody([await readFile(zst)], 'zstd', 1e8, zst)).toEqual(
      await readFile(join(store, 'img.idx')),
    );
    const verified = await runVerify({ store }, testIo());
    expect(verified.ok).toBe(true);
    expect(verified.indexes).toHaveLength(2);

    const again = await runSync({ upstream: upstream.url, store }, testIo());
    expect(again.indexes.map((i) => i.status)).toEqual(['unchanged', 'unchanged']);
    expect(again.fetchedBlocks).toBe(0);
    expect(again.indexes[0]?.present).toBe(refs.length);
    // A replica synced before .zst files existed gets one on the next pass.
    await rm(zst);
    await runSync({ upstream: upstream.url, store }, testIo());
    expect(await decodeIndexBody([await readFile(zst)], 'zstd', 1e8, zst)).toEqual(
      await readFile(join(store, 'img.idx')),
    );
  });

  it('syncs named indexes (NAME or NAME.idx) and refuses bad names or names the upstream lacks', async () => {
    const store = freshStore();
    const r = await runSync({ upstream: upstream.url, store, names: ['small.idx'] }, testIo());
    expect(r.indexes.map((i) => i.name)).toEqual(['small']);
    expect(await exists(join(store, 'img.idx'))).toBe(false);
    await expect(runSync({ upstream: upstream.url, store, names: ['../x'] }, testIo())).rejects.toThrow(UsageError);
    await expect(runSync({ upstream: upstream.url, store, names: ['nope'] }, testIo())).rejects.toThrow(InputError);
    await expect(runSync({ upstream: `${upstream.url}img.idx`, store }, testIo())).rejects.toThrow(/not an index file/);
  });

  it('needs a listing to sync everything, but not for named indexes', async () => {
    const plain = await slowProxy(0, { noListing: true });
    await expect(runSync({ upstream: plain, store: freshStore() }, testIo())).rejects.toThrow(/no store listing/);
    const r = await runSync({ upstream: plain, store: freshStore(), names: ['small'] }, testIo());
    expect(r.indexes[0]?.status).toBe('updated');
  });

  it('an interrupted sync leaves whole blocks and no index; run again, it resumes and ends complete and verified', async () => {
    const slow = await slowProxy(15);
    const store = freshStore();
    const stop = new AbortController();
    const watcher = setInterval(async () => {
      if ((await blockFiles(store)).size >= 20) stop.abort();
    }, 5);
    try {
      await expect(
        runSync({ upstream: slow, store, names: ['img'], connections: 4 }, testIo(stop.signal)),
      ).rejects.toThrow(InterruptedError);
    } finally {
      clearInterval(watcher);
    }
    const kept = await blockFiles(store);
    expect(kept.size).toBeGreaterThanOrEqual(20);
    expect(kept.size).toBeLessThan(refs.length);
    expect(await exists(join(store, 'img.idx'))).toBe(false);
    // Every file kept is a whole, verified block (temp files would start with a dot).
    for (const ref of refs.filter((r) => kept.has(r.id))) {
      expect((await stat(join(store, blockPath(ref.id)))).size).toBe(ref.storedSize);
    }

    const resumed = await runSync({ upstream: upstream.url, store, names: ['img'] }, testIo());
    expect(resumed.indexes[0]?.present).toBe(kept.size);
    expect(resumed.indexes[0]?.fetched).toBe(refs.length - kept.size);
    const verified = await runVerify({ store }, testIo());
    expect(verified.ok).toBe(true);
    expect(verified.blocksChecked).toBe(refs.length);
  });

  it('publishes the index last: whenever it is visible, every block it names is already there', async () => {
    const slow = await slowProxy(5);
    const store = freshStore();
    const index = join(store, 'img.idx');
    let sawIndex = false;
    let violations = 0;
    let checks = 0;
    let done = false;
    const watch = (async () => {
      while (!done && checks < 100_000) {
        checks++;
        if (await exists(index)) {
          sawIndex = true;
          const have = await blockFiles(store);
          violations += refs.filter((r) => !have.has(r.id)).length;
          return;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await runSync({ upstream: slow, store, names: ['img'] }, testIo());
    done = true;
    await watch;
    expect(checks).toBeGreaterThan(10); // the watcher really watched the sync happen
    expect(sawIndex || (await exists(index))).toBe(true);
    expect(violations).toBe(0);
  });

  it('refuses a corrupt upstream block: not stored, index not published, the good blocks kept', async () => {
    const badStore = join(work, 'bad-upstream');
    await cp(upstreamStore, badStore, { recursive: true });
    const victim = refs[5] as BlockRef;
    const path = join(badStore, blockPath(victim.id));
    const bytes = await readFile(path);
    bytes[0] = (bytes[0] as number) ^ 0xff;
    await writeFile(path, bytes);
    const bad = await testMirror({ store: badStore });
    try {
      const store = freshStore();
      const io = testIo();
      await expect(runSync({ upstream: bad.url, store, names: ['img'] }, io)).rejects.toThrow(/corrupt/);
      expect(await exists(join(store, blockPath(victim.id)))).toBe(false);
      expect(await exists(join(store, 'img.idx'))).toBe(false);
      expect((await blockFiles(store)).size).toBeGreaterThan(0);
      expect(io.err()).toMatch(/img: .*corrupt/);
    } finally {
      await bad.close();
    }
  });

  it('with --watch, syncs again each period until aborted, then returns normally', async () => {
    const store = freshStore();
    const stop = new AbortController();
    const passes: number[] = [];
    const r = await runSync(
      { upstream: upstream.url, store, names: ['small'], watchSeconds: 0.05 },
      {
        ...testIo(stop.signal),
        onPass: ({ report }) => {
          passes.push(report?.fetchedBlocks ?? -1);
          if (passes.length === 3) stop.abort();
        },
      },
    );
    expect(passes.length).toBe(3);
    expect(passes[0]).toBeGreaterThan(0);
    expect(passes.slice(1)).toEqual([0, 0]);
    expect(r.indexes[0]?.status).toBe('unchanged');
  });
});

/**
 * A window onto `target`: forwards every request unless `intercept` answers
 * it first with a status (it may also just look).
 */
/** A front for `target`: `intercept` may answer a path with a bare status; `rewrite` may change a 200 body. */
async function frontOf(
  target: string,
  intercept: (path: string) => Promise<number | undefined> | number | undefined,
  rewrite?: (path: string, body: Buffer) => Buffer,
): Promise<string> {
  const server = createServer(async (req, res) => {
    const path = req.url ?? '/';
    const status = await intercept(path);
    if (status !== undefined) {
      res.writeHead(status, { 'content-length': 0 }).end();
      return;
    }
    try {
      const r = await request(`${target}${path.slice(1)}`);
      if (rewrite && r.statusCode === 200) {
        const body = rewrite(path, Buffer.from(await r.body.arrayBuffer()));
        res.writeHead(200, { 'content-length': body.length }).end(body);
        return;
      }
      res.writeHead(r.statusCode, { 'content-length': r.headers['content-length'] as string });
      for await (const c of r.body) res.write(c);
      res.end();
    } catch {
      res.destroy();
    }
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

describe('sync: boot profiles', () => {
  // An upstream with three images: `signed` (index and profile signed by one key), `plain` (neither signed), `bare` (no profile).
  let profStore: string;
  let prof: RunningMirror;
  const mirrors: RunningMirror[] = [];
  const fault = (err: string) => err.split('\n').filter((l) => / FAULT /.test(l));
  const profileStatus = (r: Awaited<ReturnType<typeof runSync>>) => r.indexes.map((i) => [i.name, i.status, i.profile]);
  /** A pass over a replica already in step with `prof`. */
  const ALL_UNCHANGED = [
    ['bare', 'unchanged', 'none'],
    ['plain', 'unchanged', 'unchanged'],
    ['signed', 'unchanged', 'unchanged'],
  ];
  /** A profile as `httpstorged --record-profile` writes it: the first three blocks of STORE/NAME.idx. */
  const recorded = async (store: string, name: string, extra: string[] = []) => {
    const d = decodeIndex(await readFile(join(store, `${name}.idx`)));
    return encodeProfile(name, d.digest, [...[...d.index.uniqueRefs().keys()].slice(0, 3), ...extra]);
  };
  const idsOf = async (store: string, name: string) => [
    ...decodeIndex(await readFile(join(store, `${name}.idx`)))
      .index.uniqueRefs()
      .keys(),
  ];
  const serveCopy = async (name: string, change: (store: string) => Promise<void>) => {
    const store = join(work, name);
    await cp(profStore, store, { recursive: true });
    await change(store);
    const m = await testMirror({ store });
    mirrors.push(m);
    return m;
  };

  beforeAll(async () => {
    profStore = join(work, 'prof-upstream');
    const key = join(work, 'publisher.key');
    await writeFile(key, generateSigningKey().privateKeyPem);
    for (const [i, name] of ['signed', 'plain', 'bare'].entries()) {
      await packImage(work, profStore, name, [['t', 32 * 1024]], { blockSize: 4096, seed: 20 + i });
    }
    await runSign({ index: join(profStore, 'signed.idx'), key });
    for (const name of ['signed', 'plain']) {
      const rec = join(work, `${name}.recorded`);
      await writeFile(rec, await recorded(profStore, name));
      await runProfileAdd({
        index: join(profStore, `${name}.idx`),
        profile: rec,
        key: name === 'signed' ? key : undefined,
      });
    }
    prof = await testMirror({ store: profStore });
  }, 60_000);

  afterAll(async () => {
    for (const m of mirrors) await m.close();
    await prof?.close();
  });

  it('copies each profile once its index is in place, byte for byte; the next pass leaves it unchanged', async () => {
    const store = freshStore();
    // When the upstream is asked for NAME.profile, is NAME.idx already published in the replica?
    const indexInPlace: Record<string, boolean> = {};
    const front = await frontOf(prof.url, async (path) => {
      if (path.endsWith('.profile')) indexInPlace[path] = await exists(join(store, path.replace(/\.profile$/, '.idx')));
      return undefined;
    });
    const io = testIo();
    const r = await runSync({ upstream: front, store }, io);
    expect(profileStatus(r)).toEqual([
      ['bare', 'updated', 'none'],
      ['plain', 'updated', 'updated'],
      ['signed', 'updated', 'updated'],
    ]);
    // `bare` is not asked for: the listing says it has no profile.
    expect(indexInPlace).toEqual({ '/plain.profile': true, '/signed.profile': true });
    for (const name of ['plain', 'signed']) {
      expect(await readFile(join(store, `${name}.profile`))).toEqual(
        await readFile(join(profStore, `${name}.profile`)),
      );
    }
    expect(await exists(join(store, 'bare.profile'))).toBe(false);
    expect(fault(io.err())).toEqual([]);

    const again = await runSync({ upstream: prof.url, store }, testIo());
    expect(again.indexes.map((i) => i.profile)).toEqual(['none', 'unchanged', 'unchanged']);
  });

  it('an unchanged pass asks the upstream for its listing only; a changed profile is fetched by its listed SHA-256', async () => {
    const store = freshStore();
    await runSync({ upstream: prof.url, store }, testIo());
    const asked: string[] = [];
    const front = await frontOf(prof.url, (path) => void asked.push(path));
    const r = await runSync({ upstream: front, store }, testIo());
    expect(profileStatus(r)).toEqual(ALL_UNCHANGED);
    // The listing says `bare` has no profile, the others' SHA-256 and every image's versions: nothing else to ask.
    expect(asked).toEqual(['/index.json']);

    // The upstream records a new profile for an unchanged index: only that profile is fetched.
    const moved = await serveCopy('prof-new-profile', async (up) => {
      const d = decodeIndex(await readFile(join(up, 'plain.idx')));
      await writeFile(
        join(up, 'plain.profile'),
        encodeProfile('plain', d.digest, [...d.index.uniqueRefs().keys()].slice(1, 2)),
      );
    });
    asked.length = 0;
    const front2 = await frontOf(moved.url, (path) => void asked.push(path));
    const r2 = await runSync({ upstream: front2, store }, testIo());
    expect(profileStatus(r2)).toEqual([
      ['bare', 'unchanged', 'none'],
      ['plain', 'unchanged', 'updated'],
      ['signed', 'unchanged', 'unchanged'],
    ]);
    expect(asked).toEqual(['/index.json', '/plain.profile']);
    expect(await readFile(join(store, 'plain.profile'))).toEqual(
      await readFile(join(work, 'prof-new-profile', 'plain.profile')),
    );
  });

  it('with a listing that does not say (an older mirror, a hand-made file), asks for each profile and version list', async () => {
    const store = freshStore();
    await runSync({ upstream: prof.url, store }, testIo());
    const asked: string[] = [];
    const unsaid = (path: string, body: Buffer) => {
      if (path !== '/index.json') return body;
      const doc = JSON.parse(body.toString('utf8'));
      for (const e of doc.indexes) {
        delete e.profile;
        delete e.versions;
      }
      return Buffer.from(JSON.stringify(doc));
    };
    const front = await frontOf(prof.url, (path) => void asked.push(path), unsaid);
    const r = await runSync({ upstream: front, store }, testIo());
    expect(profileStatus(r)).toEqual(ALL_UNCHANGED);
    expect(asked.sort()).toEqual([
      '/bare.profile',
      '/index.json',
      '/plain.profile',
      '/signed.profile',
      '/versions/bare/versions.json',
      '/versions/plain/versions.json',
      '/versions/signed/versions.json',
    ]);
  });

  it('refuses a tampered profile: not published, one line each, the images still sync, a good local copy is kept', async () => {
    const bad = await serveCopy('prof-tampered', async (store) => {
      // plain: well formed and bound to its index, but naming a block of another image.
      await writeFile(
        join(store, 'plain.profile'),
        await recorded(store, 'plain', [(await idsOf(store, 'bare'))[0] as string]),
      );
      // signed: blocks reordered, end digest recomputed, the publisher's signature line kept.
      const good = await readFile(join(store, 'signed.profile'));
      const sig = good.subarray(good.lastIndexOf('sig ed25519'));
      const ids = (await idsOf(store, 'signed')).slice(0, 3).reverse();
      const body = encodeProfile('signed', decodeIndex(await readFile(join(store, 'signed.idx'))).digest, ids);
      await writeFile(join(store, 'signed.profile'), Buffer.concat([body, sig]));
    });

    const empty = freshStore();
    const io = testIo();
    const r = await runSync({ upstream: bad.url, store: empty }, io);
    expect(profileStatus(r)).toEqual([
      ['bare', 'updated', 'none'],
      ['plain', 'updated', 'refused'],
      ['signed', 'updated', 'refused'],
    ]);
    for (const name of ['bare', 'plain', 'signed']) expect(await exists(join(empty, `${name}.idx`))).toBe(true);
    expect(await exists(join(empty, 'plain.profile'))).toBe(false);
    expect(await exists(join(empty, 'signed.profile'))).toBe(false);
    const lines = fault(io.err());
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/plain\.profile refused, not published: .*does not reference/);
    expect(lines[1]).toMatch(/signed\.profile refused, not published: .*does not verify/);

    const store = freshStore();
    await runSync({ upstream: prof.url, store }, testIo());
    const before = await Promise.all(['plain', 'signed'].map((n) => readFile(join(store, `${n}.profile`))));
    const over = await runSync({ upstream: bad.url, store }, testIo());
    expect(over.indexes.map((i) => i.profile)).toEqual(['none', 'refused', 'refused']);
    expect(await Promise.all(['plain', 'signed'].map((n) => readFile(join(store, `${n}.profile`))))).toEqual(before);
  });

  it('with no upstream profile copies none and keeps a local one that fits; a replaced index takes its stale profile away', async () => {
    const store = freshStore();
    const r = await runSync({ upstream: prof.url, store, names: ['bare', 'plain'] }, testIo());
    expect(profileStatus(r)).toEqual([
      ['bare', 'updated', 'none'],
      ['plain', 'updated', 'updated'],
    ]);
    expect(await exists(join(store, 'bare.profile'))).toBe(false);
    // A profile published on this replica alone, for the index it holds: sync does not delete it.
    const local = await recorded(store, 'bare');
    await writeFile(join(store, 'bare.profile'), local);
    expect((await runSync({ upstream: prof.url, store, names: ['bare'] }, testIo())).indexes[0]?.profile).toBe('none');
    expect(await readFile(join(store, 'bare.profile'))).toEqual(Buffer.from(local));

    // The upstream republishes `plain` (new content, new digest) without a profile.
    const republished = await serveCopy('prof-republished', async (up) => {
      await packImage(work, up, 'plain', [['t', 32 * 1024]], { blockSize: 4096, seed: 99 });
      await rm(join(up, 'plain.profile'));
    });
    const io = testIo();
    const again = await runSync({ upstream: republished.url, store, names: ['plain'] }, io);
    expect(profileStatus(again)).toEqual([['plain', 'updated', 'none']]);
    expect(again.indexes[0]?.digest).not.toBe(r.indexes[1]?.digest);
    expect(await exists(join(store, 'plain.profile'))).toBe(false);
    expect(io.err()).toMatch(/plain\.profile: removed, it was bound to an older index/);
  });

  it('a profile the upstream cannot deliver fails the pass like an index would, after its index is published', async () => {
    const front = await frontOf(prof.url, (path) => (path === '/plain.profile' ? 500 : undefined));
    const store = freshStore();
    const io = testIo();
    const e = await runSync({ upstream: front, store, names: ['plain', 'signed'] }, io).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toMatch(/plain\.profile.*HTTP 500/);
    expect(await exists(join(store, 'plain.idx'))).toBe(true);
    expect(await exists(join(store, 'plain.profile'))).toBe(false);
    // The next image still synced, profile and all.
    expect(await exists(join(store, 'signed.profile'))).toBe(true);
    expect(fault(io.err())).toEqual([expect.stringMatching(/ FAULT plain\.profile: .*HTTP 500/)]);
  });
});
