import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BlockRef, blockPath, decodeIndex, decodeIndexBody, encodeProfile } from '@thfc/format';
import { runProfileAdd } from '@thfc/packer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMirror } from '../src/serve.js';
import { get, packImage, tempDir, testMirror } from './helpers.js';

let work: string;
let cleanup: () => Promise<void>;
let upstreamStore: string;
let upstream: RunningMirror;
let refs: BlockRef[];
const mirrors: RunningMirror[] = [];

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

async function pullThrough(name: string, up = upstream.url): Promise<{ m: RunningMirror; store: string }> {
  const store = join(work, name);
  const m = await testMirror({ store, upstreams: [up] });
  mirrors.push(m);
  return { m, store };
}

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir());
  upstreamStore = join(work, 'upstream');
  await packImage(work, upstreamStore, 'img', [
    ['t', 512 * 1024],
    ['r', 128 * 1024],
    ['z', 64 * 1024],
  ]);
  refs = [
    ...decodeIndex(await readFile(join(upstreamStore, 'img.idx')))
      .index.uniqueRefs()
      .values(),
  ];
  upstream = await testMirror({ store: upstreamStore });
}, 60_000);

afterAll(async () => {
  for (const m of mirrors) await m.close();
  await upstream?.close();
  await cleanup?.();
});

describe('pull-through', () => {
  it('fetches an index it lacks, then serves a block it first had to fetch, and keeps both', async () => {
    const { m, store } = await pullThrough('p1');
    const idx = await get(`${m.url}img.idx`);
    expect(idx.status).toBe(200);
    expect(idx.body.equals(await readFile(join(upstreamStore, 'img.idx')))).toBe(true);
    expect(await exists(join(store, 'img.idx'))).toBe(true);
    // Pulled with its wire twin, so this mirror serves it zstd-coded too.
    const zst = await get(`${m.url}img.idx`, { 'accept-encoding': 'zstd' });
    expect(zst.headers['content-encoding']).toBe('zstd');
    expect(await decodeIndexBody([zst.body], 'zstd', 1e8, 'zst')).toEqual(idx.body);

    const ref = refs[0] as BlockRef;
    const before = upstream.metrics.count('block', 200);
    const b = await get(`${m.url}${blockPath(ref.id)}`);
    expect(b.status).toBe(200);
    expect(b.headers.etag).toBe(`"${ref.id}"`);
    expect(b.body.equals(await readFile(join(upstreamStore, blockPath(ref.id))))).toBe(true);
    expect(await readFile(join(store, blockPath(ref.id)))).toEqual(b.body);
    expect(upstream.metrics.count('block', 200)).toBe(before + 1);

    // Now local: no second upstream fetch.
    expect((await get(`${m.url}${blockPath(ref.id)}`)).status).toBe(200);
    expect(upstream.metrics.count('block', 200)).toBe(before + 1);
    const metrics = (await get(`${m.url}metrics`)).body.toString();
    expect(metrics).toMatch(/thfc_mirror_pull_through_total\{result="fetched"\} 2/);
  });

  it('fetches a block once however many requests wait for it', async () => {
    const { m } = await pullThrough('p2');
    const ref = refs[1] as BlockRef;
    const before = upstream.metrics.count('block');
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(`${m.url}${blockPath(ref.id)}`)));
    expect(answers.every((a) => a.status === 200 && a.body.equals(answers[0]?.body as Buffer))).toBe(true);
    expect(upstream.metrics.count('block') - before).toBe(1);
  });

  it('serves a block whose index it never served, by learning refs from the upstream listing', async () => {
    const { m, store } = await pullThrough('p3');
    const ref = refs[2] as BlockRef;
    const b = await get(`${m.url}${blockPath(ref.id)}`);
    expect(b.status).toBe(200);
    expect(await exists(join(store, blockPath(ref.id)))).toBe(true);
    // An id no index names: 404, and the upstream is never asked for it.
    const before = upstream.metrics.count('block');
    expect((await get(`${m.url}blocks/ab/${'ab'.padEnd(40, '9')}`)).status).toBe(404);
    expect(upstream.metrics.count('block')).toBe(before);
    expect((await get(`${m.url}nope.idx`)).status).toBe(404);
  });

  it('refuses a corrupt upstream block: 502, nothing stored', async () => {
    const badStore = join(work, 'bad-upstream');
    await cp(upstreamStore, badStore, { recursive: true });
    const ref = refs[0] as BlockRef;
    const path = join(badStore, blockPath(ref.id));
    const bytes = await readFile(path);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0xff;
    await writeFile(path, bytes);
    const bad = await testMirror({ store: badStore });
    mirrors.push(bad);
    const { m, store } = await pullThrough('p4', bad.url);
    const r = await get(`${m.url}${blockPath(ref.id)}`);
    expect(r.status).toBe(502);
    expect(await exists(join(store, blockPath(ref.id)))).toBe(false);
    expect(m.metrics.errorCount('corrupt')).toBe(1);
    // A good block from the same upstream still comes through.
    expect((await get(`${m.url}${blockPath((refs[1] as BlockRef).id)}`)).status).toBe(200);
  });

  it('answers 502 when no upstream answers, and fails over to the next upstream', async () => {
    const dead = 'http://127.0.0.1:9/'; // discard port: connection refused
    const { m } = await pullThrough('p5', dead);
    expect((await get(`${m.url}img.idx`)).status).toBe(502);
    const store = join(work, 'p6');
    const both = await testMirror({ store, upstreams: [dead, upstream.url] });
    mirrors.push(both);
    expect((await get(`${both.url}img.idx`)).status).toBe(200);
    expect((await get(`${both.url}${blockPath((refs[3] as BlockRef).id)}`)).status).toBe(200);
  });
});

describe('pull-through: boot profiles', () => {
  // A copy of the upstream with img.profile published beside img.idx (by thfc-pack profile add).
  let profStore: string;
  let prof: RunningMirror;
  const recorded = (extra: string[] = []) =>
    encodeProfile('img', decodeIndex(indexBytes).digest, [...refs.slice(0, 4).map((r) => r.id), ...extra]);
  let indexBytes: Buffer;

  const serveCopy = async (name: string, profile: Uint8Array) => {
    const store = join(work, name);
    await cp(upstreamStore, store, { recursive: true });
    await writeFile(join(work, `${name}.recorded`), profile);
    await runProfileAdd({ index: join(store, 'img.idx'), profile: join(work, `${name}.recorded`) });
    const m = await testMirror({ store });
    mirrors.push(m);
    return { m, store };
  };

  beforeAll(async () => {
    indexBytes = await readFile(join(upstreamStore, 'img.idx'));
    ({ m: prof, store: profStore } = await serveCopy('prof-upstream', recorded()));
  });

  it('pulls a profile it lacks, its index first, checks it, keeps it and serves it from then on', async () => {
    const { m, store } = await pullThrough('pp1', prof.url);
    const r = await get(`${m.url}img.profile`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body).toEqual(await readFile(join(profStore, 'img.profile')));
    expect(await readFile(join(store, 'img.profile'))).toEqual(r.body);
    expect(await readFile(join(store, 'img.idx'))).toEqual(indexBytes);

    const asked = prof.metrics.count('file', 200);
    const again = await get(`${m.url}img.profile`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(r.body);
    expect(prof.metrics.count('file', 200)).toBe(asked); // served from the store
    const metrics = (await get(`${m.url}metrics`)).body.toString();
    expect(metrics).toMatch(/thfc_mirror_pull_through_total\{result="fetched"\} 2/); // index + profile
  });

  it('404 stays 404 and is remembered (every mount asks), and no index means no profile', async () => {
    const { m, store } = await pullThrough('pp2'); // the upstream without a profile
    const before = upstream.metrics.count('file', 404);
    expect((await get(`${m.url}img.profile`)).status).toBe(404);
    expect((await get(`${m.url}img.profile`)).status).toBe(404);
    // The second answer came from the mirror's memory of the first (kept for the index revalidation period).
    expect(upstream.metrics.count('file', 404)).toBe(before + 1);
    expect(await exists(join(store, 'img.profile'))).toBe(false);

    // No such image: the upstream is asked for its index only, never for a profile that could not be checked.
    expect((await get(`${m.url}nope.profile`)).status).toBe(404);
    expect(upstream.metrics.count('file', 404)).toBe(before + 2);
    expect(await exists(join(store, 'nope.profile'))).toBe(false);
  });

  it('refuses an upstream profile that fails the check: 502, nothing stored, counted as corrupt', async () => {
    const { m: bad } = await serveCopy('prof-hostile', recorded());
    // Bound to the right index, but naming a block it does not reference: what a hostile mirror would send.
    await writeFile(join(work, 'prof-hostile', 'img.profile'), recorded(['ab'.padEnd(40, '7')]));
    const { m, store } = await pullThrough('pp3', bad.url);
    const r = await get(`${m.url}img.profile`);
    expect(r.status).toBe(502);
    expect(await exists(join(store, 'img.profile'))).toBe(false);
    expect(m.metrics.errorCount('corrupt')).toBe(1);
    expect((await get(`${m.url}img.idx`)).status).toBe(200);
    // Asked again (the next mount): refused from memory, without another trip upstream.
    const asked = bad.metrics.count('file', 200);
    expect((await get(`${m.url}img.profile`)).status).toBe(502);
    expect(bad.metrics.count('file', 200)).toBe(asked);
  });

  it('pulling an index drops a stored profile bound to another index', async () => {
    const store = join(work, 'pp4');
    await mkdir(store);
    await writeFile(join(store, 'img.profile'), encodeProfile('img', `sha256:${'0'.repeat(64)}`, []));
    const m = await testMirror({ store, upstreams: [prof.url] });
    mirrors.push(m);
    expect((await get(`${m.url}img.idx`)).status).toBe(200);
    expect(await exists(join(store, 'img.profile'))).toBe(false);
    const r = await get(`${m.url}img.profile`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual(await readFile(join(profStore, 'img.profile')));
  });
});
