import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blockPath, decodeIndex } from '@thfc/format';
import { runPack } from '@thfc/packer';
import { VersionStore } from '@thfc/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMirror } from '../src/serve.js';
import { runSync } from '../src/sync.js';
import { get, tempDir, testIo, testMirror } from './helpers.js';

/**
 * Retained versions through a replica (docs/FORMAT.md §5.9): `sync` copies
 * the upstream's older versions with their blocks, served by thfc-mirror's
 * versions/ route, so a client pinned to v1 can use the replica; a version
 * whose bytes do not carry its listed digest is skipped.
 */
let work: string;
let cleanup: () => Promise<void>;
let upstreamStore: string;
let upstream: RunningMirror;
const digests: string[] = [];

async function blockCount(store: string): Promise<number> {
  let n = 0;
  for (const s of await readdir(join(store, 'blocks'))) n += (await readdir(join(store, 'blocks', s))).length;
  return n;
}

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir());
  upstreamStore = join(work, 'upstream');
  for (const seed of [1, 2]) {
    const image = join(work, `doc${seed}.img`);
    await writeFile(image, Buffer.alloc(4 * 65536, `version ${seed} `));
    const s = await runPack(
      {
        image,
        store: upstreamStore,
        name: 'doc',
        blockSize: 65536,
        workers: 1,
        created: new Date(`2026-11-0${seed}T00:00:00Z`),
      },
      testIo(),
    );
    digests.push(s.digest);
  }
  upstream = await testMirror({ store: upstreamStore });
}, 60_000);

afterAll(async () => {
  await upstream?.close();
  await cleanup?.();
});

describe('sync of retained versions', () => {
  it('copies every retained version with its blocks; a second pass copies none', async () => {
    const [v1, v2] = digests as [string, string];
    const store = join(work, 'replica');
    const r = await runSync({ upstream: upstream.url, store }, testIo());
    expect(r.indexes[0]?.versions).toBe(1); // v2 came as the index itself; v1 as a retained version
    const list = await new VersionStore(store).list('doc');
    expect(list.latest).toBe(v2);
    expect(list.versions.map((v) => v.digest)).toEqual([v2, v1]);
    const v1File = list.versions[1]?.file as string;
    expect(await readFile(join(store, 'versions/doc', v1File))).toEqual(
      await readFile(join(upstreamStore, 'versions/doc', v1File)),
    );
    expect(await blockCount(store)).toBe(await blockCount(upstreamStore));
    const again = await runSync({ upstream: upstream.url, store }, testIo());
    expect(again.indexes[0]?.versions).toBe(0);
    expect(again.fetchedBlocks).toBe(0);
  });

  it('skips a retained version whose bytes hold another digest, and says so', async () => {
    const [v1] = digests as [string];
    const hostileStore = join(work, 'hostile');
    await cp(upstreamStore, hostileStore, { recursive: true });
    const list = await new VersionStore(hostileStore).list('doc');
    const v1File = list.versions.find((v) => v.digest === v1)?.file as string;
    await writeFile(join(hostileStore, 'versions/doc', v1File), await readFile(join(hostileStore, 'doc.idx')));
    const hostile = await testMirror({ store: hostileStore });
    try {
      const io = testIo();
      const store = join(work, 'replica2');
      const r = await runSync({ upstream: hostile.url, store, verbose: true }, io);
      expect(r.indexes[0]?.versions).toBe(0);
      const copied = await new VersionStore(store).list('doc');
      expect(copied.versions.map((v) => v.digest)).not.toContain(v1);
      expect(io.err()).toMatch(
        new RegExp(`${v1File}: holds ${decodeIndex(await readFile(join(hostileStore, 'doc.idx'))).digest}; not copied`),
      );
    } finally {
      await hostile.close();
    }
  });
});

describe('pull-through of retained versions', () => {
  it('fills versions/NAME/ on demand, checked against the list, and then the blocks only the old version has', async () => {
    const [v1, v2] = digests as [string, string];
    const m = await testMirror({ store: join(work, 'pull'), upstreams: [upstream.url] });
    try {
      const list = await get(`${m.url}versions/doc/versions.json`);
      expect(list.status).toBe(200);
      const files = JSON.parse(list.body.toString()).versions as { file: string; digest: string }[];
      const v1File = files.find((f) => f.digest === v1)?.file as string;
      const got = await get(`${m.url}versions/doc/${v1File}`);
      expect(got.status).toBe(200);
      expect(got.body.equals(await readFile(join(upstreamStore, 'versions/doc', v1File)))).toBe(true);
      // A block of v1 that v2 does not have: known through the pulled version, so pulled too.
      const v2Ids = new Set(
        decodeIndex(await readFile(join(upstreamStore, 'doc.idx')))
          .index.uniqueRefs()
          .keys(),
      );
      const only1 = [...decodeIndex(got.body).index.uniqueRefs().keys()].find((id) => !v2Ids.has(id)) as string;
      expect((await get(`${m.url}${blockPath(only1)}`)).status).toBe(200);
      expect((await get(`${m.url}versions/doc/20200101T000000Z-000000000000.idx`)).status).toBe(404);
      expect(v2).not.toBe(v1);
    } finally {
      await m.close();
    }
  });

  it('refuses a retained version whose bytes hold another digest: 502, nothing stored', async () => {
    const [v1] = digests as [string];
    const hostileStore = join(work, 'hostile-pull');
    await cp(upstreamStore, hostileStore, { recursive: true });
    const list = await new VersionStore(hostileStore).list('doc');
    const v1File = list.versions.find((v) => v.digest === v1)?.file as string;
    await writeFile(join(hostileStore, 'versions/doc', v1File), await readFile(join(hostileStore, 'doc.idx')));
    const hostile = await testMirror({ store: hostileStore });
    const m = await testMirror({ store: join(work, 'pull2'), upstreams: [hostile.url] });
    try {
      expect((await get(`${m.url}versions/doc/${v1File}`)).status).toBe(502);
      await expect(readFile(join(work, 'pull2', 'versions/doc', v1File))).rejects.toThrow(/ENOENT/);
    } finally {
      await m.close();
      await hostile.close();
    }
  });
});
