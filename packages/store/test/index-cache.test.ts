import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compressIndex, IndexFormatError } from '@thfc/format';
import { loadIndex, MAX_INDEX_BYTES } from '@thfc/store';
import { makeImage, patternBytes, tempDir } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * The client side of indexes on the wire (FORMAT.md §9) and the index cache
 * (index-cache.ts), against a real node:http server that does what a mirror
 * or a static server does: ETag, If-None-Match, and optionally a coding.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-index-cache-');
  cleanups.push(t.cleanup);
  return t.dir;
}

interface Seen {
  readonly path: string;
  readonly acceptEncoding: string | undefined;
  readonly ifNoneMatch: string | undefined;
  readonly status: number;
  readonly bytes: number;
}

/** Serves `state.index` at every /…/img.idx path, in `state.coding` when the client accepts it. */
async function indexServer(state: { index: Uint8Array; coding?: 'zstd' | 'gzip' | 'bomb' }) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const etag = `"${createHash('sha256').update(state.index).digest('hex')}${state.coding ? `-${state.coding}` : ''}"`;
    const accept = req.headers['accept-encoding'];
    const note = (status: number, bytes: number) =>
      seen.push({
        path: req.url ?? '',
        acceptEncoding: accept,
        ifNoneMatch: req.headers['if-none-match'],
        status,
        bytes,
      });
    if (req.headers['if-none-match'] === etag) {
      note(304, 0);
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    let body: Uint8Array = state.index;
    const headers: Record<string, string> = { etag, 'content-type': 'text/plain' };
    if (state.coding === 'bomb') {
      body = compressIndex(Buffer.alloc(MAX_INDEX_BYTES + 1));
      headers['content-encoding'] = 'zstd';
    } else if (state.coding && accept?.includes(state.coding)) {
      body = state.coding === 'zstd' ? compressIndex(state.index) : gzipSync(state.index);
      headers['content-encoding'] = state.coding;
    }
    note(200, body.length);
    res.writeHead(200, headers);
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const image = (seed: number) =>
  makeImage([patternBytes(4096, seed), new Uint8Array(4096), patternBytes(3000, seed + 1)], { name: 'img' });

describe('index codings', () => {
  for (const coding of ['zstd', 'gzip'] as const) {
    it(`asks for zstd or gzip and decodes a ${coding} body to the index`, async () => {
      const img = image(1);
      const server = await indexServer({ index: img.indexBytes, coding });
      const loaded = await loadIndex(`${server.url}/img.idx`, {}, {});
      expect(loaded.decoded.digest).toBe(img.decoded.digest);
      expect(Buffer.from(loaded.decoded.bytes)).toEqual(Buffer.from(img.indexBytes));
      expect(server.seen[0]?.acceptEncoding).toBe('zstd, gzip');
    });
  }

  it('a compressed bomb stops at MAX_INDEX_BYTES with IndexFormatError', async () => {
    const server = await indexServer({ index: image(1).indexBytes, coding: 'bomb' });
    const e = await loadIndex(`${server.url}/img.idx`, {}, {}).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(IndexFormatError);
    expect((e as Error).message).toMatch(/larger than/);
  });
});

describe('the index cache', () => {
  it('a mount of an unchanged index is a 304, not a download; a changed one is downloaded', async () => {
    const a = image(1);
    const state: { index: Uint8Array; coding?: 'zstd' } = { index: a.indexBytes, coding: 'zstd' };
    const server = await indexServer(state);
    const cacheDir = await dir();
    const url = `${server.url}/img.idx`;
    expect((await loadIndex(url, {}, { cacheDir })).revalidated).toBeUndefined();
    const again = await loadIndex(url, {}, { cacheDir });
    expect(again.from).toBe('network');
    expect(again.revalidated).toBe(true);
    expect(again.decoded.digest).toBe(a.decoded.digest);
    expect(server.seen.map((s) => s.status)).toEqual([200, 304]);
    expect(server.seen[1]?.ifNoneMatch).toMatch(/-zstd"$/);

    const b = image(2);
    state.index = b.indexBytes;
    const changed = await loadIndex(url, {}, { cacheDir });
    expect(changed.decoded.digest).toBe(b.decoded.digest);
    expect(changed.revalidated).toBeUndefined();
    expect(server.seen.map((s) => s.status)).toEqual([200, 304, 200]);
    // Offline, the URL's latest copy is used.
    expect((await loadIndex(url, {}, { cacheDir, offline: true })).decoded.digest).toBe(b.decoded.digest);
  });

  it('keeps one copy per digest, whichever URLs gave it', async () => {
    const a = image(1);
    const server = await indexServer({ index: a.indexBytes });
    const cacheDir = await dir();
    await loadIndex(`${server.url}/one/img.idx`, {}, { cacheDir });
    await loadIndex(`${server.url}/two/img.idx`, {}, { cacheDir });
    const files = (await readdir(join(cacheDir, 'indexes'))).sort();
    expect(files.filter((f) => f.endsWith('.idx'))).toEqual([`sha256-${a.decoded.digest.slice(7)}.idx`]);
    expect(files.filter((f) => f.endsWith('.ref'))).toHaveLength(2);
  });

  it('a 304 for a damaged copy fetches the index again, unconditionally', async () => {
    const a = image(1);
    const server = await indexServer({ index: a.indexBytes });
    const cacheDir = await dir();
    const url = `${server.url}/img.idx`;
    await loadIndex(url, {}, { cacheDir });
    const copy = join(cacheDir, 'indexes', `sha256-${a.decoded.digest.slice(7)}.idx`);
    await writeFile(copy, 'damaged');
    const loaded = await loadIndex(url, {}, { cacheDir });
    expect(loaded.decoded.digest).toBe(a.decoded.digest);
    expect(server.seen.map((s) => [s.status, s.ifNoneMatch !== undefined])).toEqual([
      [200, false],
      [304, true],
      [200, false],
    ]);
    expect(Buffer.from(await readFile(copy))).toEqual(Buffer.from(a.indexBytes));
  });

  it('still reads a copy of the old per-URL layout offline', async () => {
    const a = image(1);
    const server = await indexServer({ index: a.indexBytes });
    const cacheDir = await dir();
    const url = `${server.url}/img.idx`;
    await mkdir(join(cacheDir, 'indexes'), { recursive: true });
    await writeFile(join(cacheDir, 'indexes', `${createHash('sha256').update(url).digest('hex')}.idx`), a.indexBytes);
    expect((await loadIndex(url, {}, { cacheDir, offline: true })).decoded.digest).toBe(a.decoded.digest);
    expect(server.seen).toEqual([]);
  });
});
