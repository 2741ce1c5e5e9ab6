import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { compressIndex, decodeIndexBody } from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_GZIP_INDEX_BYTES } from '../../src/routes/encoded-index.js';
import type { RunningMirror } from '../../src/serve.js';
import { get, packImage, tempDir, testMirror } from '../helpers.js';

/** Indexes on the wire through a real thfc-mirror: zstd from NAME.idx.zst, gzip on the fly, or plain. */
let cleanup: () => Promise<void>;
let store: string;
let mirror: RunningMirror;
let plain: Buffer;
let sha: string;

beforeAll(async () => {
  let work: string;
  ({ dir: work, cleanup } = await tempDir());
  store = join(work, 'store');
  await packImage(work, store, 'img', [
    ['t', 900 * 1024],
    ['z', 300 * 1024],
  ]);
  plain = await readFile(join(store, 'img.idx'));
  sha = createHash('sha256').update(plain).digest('hex');
  mirror = await testMirror({ store });
}, 60_000);

afterAll(async () => {
  await mirror?.close();
  await cleanup?.();
});

const url = () => `${mirror.url}img.idx`;
const unzstd = (b: Buffer) => decodeIndexBody([b], 'zstd', 1e8, 'test');

describe('index content codings', () => {
  it('thfc-pack wrote NAME.idx.zst, byte for byte the index once decoded', async () => {
    expect(await unzstd(await readFile(join(store, 'img.idx.zst')))).toEqual(plain);
  });

  it('sends zstd from NAME.idx.zst to a client that accepts it, with its own ETag, and 304 on revalidation', async () => {
    const r = await get(url(), { 'accept-encoding': 'zstd, gzip' });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe('zstd');
    expect(r.headers.vary).toMatch(/accept-encoding/i);
    expect(r.headers.etag).toBe(`"${sha}-zstd"`);
    expect(r.headers['x-thfc-digest']).toMatch(/^sha256:/);
    expect(r.body.length).toBeLessThan(plain.length);
    expect(await unzstd(r.body)).toEqual(plain);
    const again = await get(url(), { 'accept-encoding': 'zstd', 'if-none-match': r.headers.etag as string });
    expect(again.status).toBe(304);
    // The plain ETag names another representation: a full answer.
    expect((await get(url(), { 'accept-encoding': 'zstd', 'if-none-match': `"${sha}"` })).status).toBe(200);
  });

  it('gzips on the fly for gzip-only clients; HEAD has no body', async () => {
    const r = await get(url(), { 'accept-encoding': 'gzip' });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(r.headers.etag).toBe(`"${sha}-gzip"`);
    expect(gunzipSync(r.body)).toEqual(plain);
    const head = await get(url(), { 'accept-encoding': 'gzip' }, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect((await get(url(), { 'accept-encoding': 'gzip', 'if-none-match': `"${sha}-gzip"` })).status).toBe(304);
  });

  it('sends the plain index, with Vary, to a client that accepts neither', async () => {
    const r = await get(url(), { 'accept-encoding': 'br' });
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers.vary).toMatch(/accept-encoding/i);
    expect(r.headers.etag).toBe(`"${sha}"`);
    expect(r.body).toEqual(plain);
    expect((await get(`${mirror.url}img.idx.zst`)).status).toBe(404);
  });

  it('does not gzip an index larger than MAX_GZIP_INDEX_BYTES on the fly: it goes plain', async () => {
    const big = Buffer.alloc(MAX_GZIP_INDEX_BYTES + 1, 'a');
    await writeFile(join(store, 'big.idx'), big);
    const r = await get(`${mirror.url}big.idx`, { 'accept-encoding': 'gzip' });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.body.length).toBe(big.length);
  });

  it('never sends a .zst that does not decode to NAME.idx', async () => {
    const zst = join(store, 'img.idx.zst');
    const good = await readFile(zst);
    try {
      await writeFile(zst, compressIndex(Buffer.concat([plain, Buffer.from('x')])));
      const r = await get(url(), { 'accept-encoding': 'zstd' });
      expect(r.headers['content-encoding']).toBeUndefined();
      expect(r.body).toEqual(plain);
      const g = await get(url(), { 'accept-encoding': 'zstd, gzip' });
      expect(g.headers['content-encoding']).toBe('gzip');
      await writeFile(zst, 'garbage');
      expect((await get(url(), { 'accept-encoding': 'zstd' })).body).toEqual(plain);
    } finally {
      await writeFile(zst, good);
    }
  });
});
