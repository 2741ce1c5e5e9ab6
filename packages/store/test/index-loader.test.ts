import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  IndexFormatError,
  InputError,
  keyIdOf,
  MirrorUnavailableError,
  rawPublicKey,
  SignatureError,
  signIndex,
  UsageError,
} from '@thfc/format';
import {
  checkTrust,
  DEFAULT_INDEX_TIMEOUT_MS,
  INDEX_ATTEMPTS,
  loadIndex,
  MAX_INDEX_BYTES,
  MAX_INDEX_REDIRECTS,
  MemoryLogger,
  parseIndexLocation,
  redirectTarget,
} from '@thfc/store';
import { makeImage, patternBytes, type TestImage, tempDir } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-index-loader-');
  cleanups.push(t.cleanup);
  return t.dir;
}

function smallImage(seed = 1, name = 'img'): TestImage {
  return makeImage([patternBytes(4096, seed), new Uint8Array(4096), patternBytes(100, seed + 1)], { name });
}

interface Answer {
  readonly status: number;
  readonly body?: Uint8Array | string;
  /** Never answer (the client's timeout is what ends the exchange). */
  readonly hang?: boolean;
}

/** A real node:http server on 127.0.0.1:0, closed after the test. */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  };
  cleanups.push(close);
  return { url, close };
}

/** `answer` decides each response by path; requests are counted. */
async function startServer(answer: (path: string) => Answer) {
  const requests: string[] = [];
  const server = await listen((req, res) => {
    const path = req.url ?? '';
    requests.push(path);
    const a = answer(path);
    if (a.hang) return;
    res.writeHead(a.status, { 'content-type': 'application/octet-stream' });
    res.end(a.body ?? '');
  });
  return { ...server, requests };
}

/** Serves `bytes` at /imgs/img.idx, and whatever `override` says instead while it is set. */
async function serveIndex(bytes: Uint8Array) {
  const state: { override?: Answer } = {};
  const server = await startServer(
    (path) =>
      state.override ?? (path === '/imgs/img.idx' ? { status: 200, body: bytes } : { status: 404, body: 'not found' }),
  );
  return { ...server, indexUrl: `${server.url}/imgs/img.idx`, state };
}

/** The index copies in the cache (index-cache.ts): one per digest, beside the per-URL records. */
const cachedIndexes = async (cacheDir: string) =>
  (await readdir(join(cacheDir, 'indexes')).catch(() => [] as string[])).filter((f) => f.endsWith('.idx'));

describe('parseIndexLocation', () => {
  it('http and https URLs: the index, and the directory its blocks are under', () => {
    expect(parseIndexLocation('http://mirror.example/imgs/debian.idx')).toEqual({
      kind: 'http',
      location: 'http://mirror.example/imgs/debian.idx',
      base: 'http://mirror.example/imgs/',
    });
    expect(parseIndexLocation('https://m.example:8443/a/b/debian.idx#frag')).toEqual({
      kind: 'http',
      location: 'https://m.example:8443/a/b/debian.idx',
      base: 'https://m.example:8443/a/b/',
    });
    expect(parseIndexLocation('HTTP://M.EXAMPLE/debian.idx').base).toBe('http://m.example/');
  });

  it('file URLs and paths, relative paths resolved', () => {
    expect(parseIndexLocation('file:///srv/store/debian.idx')).toEqual({
      kind: 'file',
      location: '/srv/store/debian.idx',
      base: '/srv/store',
    });
    expect(parseIndexLocation('/srv/store/debian.idx')).toEqual({
      kind: 'file',
      location: '/srv/store/debian.idx',
      base: '/srv/store',
    });
    expect(parseIndexLocation('store/debian.idx')).toEqual({
      kind: 'file',
      location: resolve('store/debian.idx'),
      base: resolve('store'),
    });
    expect(parseIndexLocation(pathToFileURL('/a dir/x.idx').href).location).toBe('/a dir/x.idx');
  });

  for (const [arg, why] of [
    ['ftp://mirror.example/debian.idx', 'unsupported scheme ftp:'],
    ['mailto:someone@example.org', 'unsupported scheme mailto:'],
    ['http:///debian.idx', 'no host'],
    ['https://', 'no host'],
    ['http://mirror.example/imgs/', 'it names a directory, not an index file'],
    ['http://mirror.example', 'it names a directory, not an index file'],
    ['http://exa mple.org/debian.idx', 'not a valid URL'],
    ['http://[::1/debian.idx', 'not a valid URL'],
    ['file://fileserver/debian.idx', 'File URL host must be'],
    ['', 'empty'],
  ] as const) {
    it(`refuses ${JSON.stringify(arg)}: ${why}`, () => {
      let error: unknown;
      try {
        parseIndexLocation(arg);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      const message = (error as Error).message;
      expect(message).toContain(`bad index URL "${arg}": ${why}`);
      expect(message).toContain('expected http(s)://HOST/…/NAME.idx, file:///…/NAME.idx or a path');
    });
  }
});

describe('loadIndex from a file', () => {
  it('reads and decodes a path or a file URL', async () => {
    const d = await dir();
    const img = smallImage();
    const path = join(d, 'img.idx');
    await writeFile(path, img.indexBytes);
    for (const arg of [path, pathToFileURL(path).href]) {
      const loaded = await loadIndex(arg, {});
      expect(loaded.from).toBe('file');
      expect(loaded.decoded.digest).toBe(img.decoded.digest);
      expect(loaded.location).toEqual({ kind: 'file', location: path, base: d });
    }
  });

  it('a missing file is InputError; a directory is UsageError; garbage names the file and line', async () => {
    const d = await dir();
    await expect(loadIndex(join(d, 'nope.idx'), {})).rejects.toBeInstanceOf(InputError);
    await expect(loadIndex(d, {})).rejects.toBeInstanceOf(UsageError);
    await writeFile(join(d, 'bad.idx'), 'thfc-index 1\nname img\nsize ten\n');
    const e = await loadIndex(join(d, 'bad.idx'), {}).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(IndexFormatError);
    expect((e as Error).message).toContain(join(d, 'bad.idx'));
  });
});

describe('loadIndex over HTTP', () => {
  it('fetches, decodes and keeps a copy under CACHE/indexes/', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    const logger = new MemoryLogger();
    const loaded = await loadIndex(server.indexUrl, { logger }, { cacheDir });
    expect(loaded.from).toBe('network');
    expect(loaded.decoded.digest).toBe(img.decoded.digest);
    expect(loaded.location.base).toBe(`${server.url}/imgs/`);
    expect(server.requests).toEqual(['/imgs/img.idx']);
    const files = await cachedIndexes(cacheDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^sha256-[0-9a-f]{64}\.idx$/);
    expect(
      Buffer.from(await readFile(join(cacheDir, 'indexes', files[0] as string))).equals(Buffer.from(img.indexBytes)),
    ).toBe(true);
    expect(logger.lines).toEqual([]);
  });

  it('without a cache directory nothing is written, and the index still loads', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    expect((await loadIndex(server.indexUrl, {})).from).toBe('network');
  });

  it('404 and 410 are InputError (no such index), and the cached copy is not used for them', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    for (const status of [404, 410]) {
      server.state.override = { status, body: 'gone' };
      const e = await loadIndex(server.indexUrl, {}, { cacheDir }).catch((e: unknown) => e);
      expect(e).toBeInstanceOf(InputError);
      expect((e as Error).message).toBe(`${server.indexUrl}: HTTP ${status} (no such index)`);
    }
  });

  it('a 5xx is MirrorUnavailableError when nothing is cached', async () => {
    const server = await serveIndex(smallImage().indexBytes);
    server.state.override = { status: 503, body: 'busy' };
    const e = await loadIndex(server.indexUrl, {}, { cacheDir: await dir() }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toBe(`${server.indexUrl} unavailable: HTTP 503`);
  });

  it('a 5xx falls back to the cached copy, and says so', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    server.state.override = { status: 500, body: 'oops' };
    const logger = new MemoryLogger();
    const loaded = await loadIndex(server.indexUrl, { logger }, { cacheDir });
    expect(loaded.from).toBe('cache');
    expect(loaded.decoded.digest).toBe(img.decoded.digest);
    expect(logger.lines).toEqual([
      `FAULT ${server.indexUrl} unavailable: HTTP 500; retrying (attempt 2 of ${INDEX_ATTEMPTS})`,
      `FAULT ${server.indexUrl} unavailable: HTTP 500; retrying (attempt 3 of ${INDEX_ATTEMPTS})`,
      `FAULT ${server.indexUrl} unavailable: HTTP 500; using the cached copy of the index`,
    ]);
  });

  it('one 503 or reset is retried: a cold mount survives a single fault on the index', async () => {
    const img = smallImage();
    let n = 0;
    const server = await startServer(() =>
      ++n === 1 ? { status: 503, body: 'busy' } : { status: 200, body: img.indexBytes },
    );
    const logger = new MemoryLogger();
    const loaded = await loadIndex(`${server.url}/img.idx`, { logger }, { cacheDir: await dir() });
    expect(loaded.from).toBe('network');
    expect(n).toBe(2);
    expect(logger.lines).toEqual([`FAULT ${server.url}/img.idx unavailable: HTTP 503; retrying (attempt 2 of 3)`]);
  });

  it('a redirected index is followed (another server too); its blocks are then fetched from where it was', async () => {
    const img = smallImage();
    const target = await serveIndex(img.indexBytes);
    let hops = 0;
    const front = await listen((req, res) => {
      hops++;
      // First a relative redirect on the same server, then off to the other one.
      const to = req.url === '/old/img.idx' ? '/moved/img.idx' : target.indexUrl;
      res.writeHead(req.url === '/old/img.idx' ? 301 : 307, { location: to }).end('moved');
    });
    const cacheDir = await dir();
    const logger = new MemoryLogger();
    const loaded = await loadIndex(`${front.url}/old/img.idx`, { logger }, { cacheDir });
    expect(loaded.decoded.digest).toBe(img.decoded.digest);
    expect(hops).toBe(2);
    expect(loaded.location.location).toBe(`${front.url}/old/img.idx`); // as given: the cache's key
    expect(loaded.location.base).toBe(`${target.url}/imgs/`);
    expect(logger.lines).toEqual([
      `INFO ${front.url}/old/img.idx redirected to ${target.indexUrl}: blocks are fetched from ${target.url}/imgs/`,
    ]);
    // Offline, the copy kept under the URL as given is found.
    expect((await loadIndex(`${front.url}/old/img.idx`, {}, { cacheDir, offline: true })).from).toBe('cache');
  });

  it('a redirect loop stops after MAX_INDEX_REDIRECTS; a redirect off http(s) is refused', async () => {
    let n = 0;
    const loop = await listen((_req, res) => {
      n++;
      res.writeHead(302, { location: `/hop${n}/img.idx` }).end();
    });
    const e = await loadIndex(`${loop.url}/img.idx`, {}).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toContain(`more than ${MAX_INDEX_REDIRECTS} redirects`);
    expect(n).toBe(INDEX_ATTEMPTS * (MAX_INDEX_REDIRECTS + 1)); // each attempt follows the chain afresh

    const sneaky = await listen((_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    const f = await loadIndex(`${sneaky.url}/img.idx`, {}).catch((e: unknown) => e);
    expect(f).toBeInstanceOf(InputError);
    expect((f as Error).message).toBe(`${sneaky.url}/img.idx: HTTP 302 to file: URL, not followed`);
  });

  it('redirectTarget: resolves relative locations, ignores non-redirects, refuses other schemes and https → http', () => {
    const r = (statusCode: number, location?: string) => ({ statusCode, headers: location ? { location } : {} });
    expect(redirectTarget('http://a/x/i.idx', r(301, '../y/i.idx#frag'))).toBe('http://a/y/i.idx');
    expect(redirectTarget('http://a/i.idx', r(308, 'https://b/i.idx'))).toBe('https://b/i.idx');
    expect(redirectTarget('http://a/i.idx', r(200))).toBeUndefined();
    expect(redirectTarget('http://a/i.idx', r(304, '/x'))).toBeUndefined();
    expect(redirectTarget('http://a/i.idx', r(302))).toBeUndefined(); // no Location: the caller reports HTTP 302
    expect(() => redirectTarget('https://a/i.idx', r(302, 'http://a/i.idx'))).toThrow(InputError);
    expect(() => redirectTarget('http://a/i.idx', r(307, 'ftp://a/i.idx'))).toThrow(/ftp: URL, not followed/);
  });

  it('with followRedirects: false a redirect is an unavailable mirror (thfc-mirror fetches blocks from the URL given)', async () => {
    const target = await serveIndex(smallImage().indexBytes);
    const front = await listen((_req, res) => res.writeHead(301, { location: target.indexUrl }).end());
    const e = await loadIndex(`${front.url}/img.idx`, {}, { followRedirects: false }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toBe(`${front.url}/img.idx unavailable: HTTP 301`);
    expect(target.requests).toEqual([]);
  });

  it('a closed port is MirrorUnavailableError, or the cached copy when there is one', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    await server.close();

    const e = await loadIndex(server.indexUrl, {}, { cacheDir: await dir() }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toMatch(new RegExp(`^${server.indexUrl} unavailable: `));

    const logger = new MemoryLogger();
    const loaded = await loadIndex(server.indexUrl, { logger }, { cacheDir });
    expect(loaded.from).toBe('cache');
    expect(logger.lines).toHaveLength(INDEX_ATTEMPTS);
    expect(logger.lines.at(-1)).toMatch(/; using the cached copy of the index$/);
  });

  it('a server that never answers is MirrorUnavailableError within the timeout', async () => {
    const server = await startServer(() => ({ status: 200, hang: true }));
    const started = Date.now();
    const e = await loadIndex(`${server.url}/img.idx`, {}, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toBe(`${server.url}/img.idx unavailable: no answer within 200 ms`);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(DEFAULT_INDEX_TIMEOUT_MS).toBe(10_000);
  });

  it('a garbage body is IndexFormatError naming the URL, is not cached, and does not fall back', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    const before = await readFile(join(cacheDir, 'indexes', (await cachedIndexes(cacheDir))[0] as string));
    server.state.override = { status: 200, body: '<html>captive portal</html>\n' };
    const e = await loadIndex(server.indexUrl, {}, { cacheDir }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(IndexFormatError);
    expect((e as Error).message).toMatch(new RegExp(`^${server.indexUrl}: line 1 \\(magic\\): not a thfc index`));
    const after = await readFile(join(cacheDir, 'indexes', (await cachedIndexes(cacheDir))[0] as string));
    expect(after.equals(before)).toBe(true);
  });

  it('the caller’s abort rejects with its reason and does not fall back', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    server.state.override = { status: 200, hang: true };
    const ac = new AbortController();
    const p = loadIndex(server.indexUrl, {}, { cacheDir, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('SIGTERM')), 20);
    await expect(p).rejects.toThrow('SIGTERM');
  });
});

describe('loadIndex offline', () => {
  it('uses the cached copy without touching the network', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    const loaded = await loadIndex(server.indexUrl, {}, { cacheDir, offline: true });
    expect(loaded.from).toBe('cache');
    expect(loaded.decoded.digest).toBe(img.decoded.digest);
    expect(server.requests).toHaveLength(1);
  });

  it('without a cached copy, or without a cache, fails saying why', async () => {
    const url = 'http://127.0.0.1:9/imgs/img.idx';
    const e1 = await loadIndex(url, {}, { cacheDir: await dir(), offline: true }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(MirrorUnavailableError);
    expect((e1 as Error).message).toBe(`${url} unavailable: offline, and the index was never fetched on this machine`);
    const e2 = await loadIndex(url, {}, { offline: true }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(MirrorUnavailableError);
    expect((e2 as Error).message).toBe(`${url} unavailable: offline, and there is no cache to read the index from`);
  });

  it('a corrupt cached copy is named as the cached copy, with its file and how to clear it', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    const [file] = await cachedIndexes(cacheDir);
    const path = join(cacheDir, 'indexes', file as string);
    await writeFile(
      path,
      Buffer.from(img.indexBytes)
        .toString('latin1')
        .replace(/\n[0-9a-f]{40,}/, '\nnot-a-block-id'),
    );
    const e = await loadIndex(server.indexUrl, {}, { cacheDir, offline: true }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(IndexFormatError);
    const message = (e as Error).message;
    expect(message.startsWith(`the cached copy of ${server.indexUrl} (${path}): line `)).toBe(true);
    expect(message).toContain(
      `this is the copy cached on this machine, not the published index: remove it (rm ${path})`,
    );
    // Online with the mirror down, the corrupt copy is not used, and the log names it.
    await server.close();
    const logger = new MemoryLogger();
    await expect(loadIndex(server.indexUrl, { logger }, { cacheDir })).rejects.toBeInstanceOf(MirrorUnavailableError);
    expect(logger.lines.some((l) => l.includes(`the cached copy of ${server.indexUrl} (${path})`))).toBe(true);
  });

  it('copies are kept per URL: another URL’s copy is not used', async () => {
    const img = smallImage();
    const server = await serveIndex(img.indexBytes);
    const cacheDir = await dir();
    await loadIndex(server.indexUrl, {}, { cacheDir });
    await expect(loadIndex(`${server.url}/other/img.idx`, {}, { cacheDir, offline: true })).rejects.toBeInstanceOf(
      MirrorUnavailableError,
    );
  });

  it('a file index needs no cache', async () => {
    const d = await dir();
    await writeFile(join(d, 'img.idx'), smallImage().indexBytes);
    expect((await loadIndex(join(d, 'img.idx'), {}, { offline: true })).from).toBe('file');
  });
});

describe('trust', () => {
  function key(): { privateKey: KeyObject; raw: Uint8Array; id: string } {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw = rawPublicKey(publicKey);
    return { privateKey, raw, id: keyIdOf(raw) };
  }

  async function indexFile(bytes: Uint8Array): Promise<string> {
    const path = join(await dir(), 'img.idx');
    await writeFile(path, bytes);
    return path;
  }

  async function refusal(bytes: Uint8Array, trust: Uint8Array[]): Promise<Error> {
    const e = await loadIndex(await indexFile(bytes), {}, { trust }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(Error);
    return e as Error;
  }

  it('an unsigned index is refused: not signed', async () => {
    const path = await indexFile(smallImage().indexBytes);
    const e = await loadIndex(path, {}, { trust: [key().raw] }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(SignatureError);
    expect((e as Error).message).toBe(`refusing to mount img (${path}): the index is not signed`);
  });

  it('without a trust list an unsigned index loads', async () => {
    expect((await loadIndex(await indexFile(smallImage().indexBytes), {})).from).toBe('file');
  });

  it('signed by a trusted key: loads', async () => {
    const k = key();
    const signed = signIndex(smallImage().indexBytes, k.privateKey, k.raw);
    const loaded = await loadIndex(await indexFile(signed), {}, { trust: [key().raw, k.raw] });
    expect(loaded.decoded.signatures.map((s) => s.keyId)).toEqual([k.id]);
  });

  it('signed only by an untrusted key: refused, naming the key id', async () => {
    const signer = key();
    const signed = signIndex(smallImage().indexBytes, signer.privateKey, signer.raw);
    const e = await refusal(signed, [key().raw]);
    expect(e).toBeInstanceOf(SignatureError);
    expect(e.message).toMatch(/: signed only by untrusted keys [0-9a-f]{16}$/);
    expect(e.message).toContain(signer.id);
  });

  it('changed after signing: the body no longer matches its digest', async () => {
    const k = key();
    const signed = Buffer.from(signIndex(smallImage().indexBytes, k.privateKey, k.raw));
    const at = signed.indexOf('name img');
    signed.write('name imh', at);
    const e = await refusal(signed, [k.raw]);
    expect(e).toBeInstanceOf(IndexFormatError);
    expect(e.message).toContain('digest does not match the index body');
  });

  it('a trusted signature moved onto another index does not verify', async () => {
    const k = key();
    const signedA = Buffer.from(signIndex(smallImage(1).indexBytes, k.privateKey, k.raw));
    const sigLine = signedA.subarray(smallImage(1).indexBytes.length);
    const forged = Buffer.concat([smallImage(50).indexBytes, sigLine]);
    const e = await refusal(forged, [k.raw]);
    expect(e).toBeInstanceOf(SignatureError);
    expect(e.message).toMatch(
      new RegExp(`the signature by trusted key ${k.id} does not verify \\(the index was changed\\)$`),
    );
  });

  it('a signature that does not verify is refused with or without trust, unless invalidSignature is allow', async () => {
    const k = key();
    const signedA = Buffer.from(signIndex(smallImage(1).indexBytes, k.privateKey, k.raw));
    const forged = Buffer.concat([smallImage(50).indexBytes, signedA.subarray(smallImage(1).indexBytes.length)]);
    const path = await indexFile(forged);
    for (const trust of [undefined, [key().raw]]) {
      const e = await loadIndex(path, {}, { trust, invalidSignature: 'refuse' }).catch((e: unknown) => e);
      expect(e).toBeInstanceOf(SignatureError);
      expect((e as Error).message).toBe(
        `index img (${path}): the signature by key ${k.id} does not verify: the index changed after it was signed; refusing to mount it (--allow-invalid-signature mounts it anyway)`,
      );
    }
    const logger = new MemoryLogger();
    const loaded = await loadIndex(path, { logger }, { invalidSignature: 'allow' });
    expect(loaded.authenticated).toBe(false);
    expect(logger.lines).toEqual([
      `FAULT index img (${path}): the signature by key ${k.id} does not verify: the index changed after it was signed; mounting it anyway (--allow-invalid-signature)`,
    ]);
    // Allowing an invalid signature is not trusting it: the trust policy still refuses.
    await expect(loadIndex(path, {}, { trust: [k.raw], invalidSignature: 'allow' })).rejects.toBeInstanceOf(
      SignatureError,
    );
    // Not asked (thfc-mirror relays indexes): not checked.
    await expect(loadIndex(path, {})).resolves.toMatchObject({ from: 'file' });
  });

  it('authenticated only under a trust policy', async () => {
    const k = key();
    const path = await indexFile(signIndex(smallImage().indexBytes, k.privateKey, k.raw));
    expect((await loadIndex(path, {})).authenticated).toBe(false);
    expect(await loadIndex(path, {}, { trust: [k.raw] })).toMatchObject({ authenticated: true, signer: k.id });
  });

  it('key rotation: signed by the old and the new key, it loads when trusting either', async () => {
    const [oldKey, newKey, stranger] = [key(), key(), key()];
    const both = signIndex(
      signIndex(smallImage().indexBytes, oldKey.privateKey, oldKey.raw),
      newKey.privateKey,
      newKey.raw,
    );
    const path = await indexFile(both);
    for (const trust of [[oldKey.raw], [newKey.raw], [newKey.raw, oldKey.raw]]) {
      await expect(loadIndex(path, {}, { trust })).resolves.toMatchObject({ from: 'file' });
    }
    const e = await loadIndex(path, {}, { trust: [stranger.raw] }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(SignatureError);
    expect((e as Error).message).toContain(`signed only by untrusted keys ${oldKey.id}, ${newKey.id}`);
  });

  it('trust is checked for network and cached copies alike', async () => {
    const signer = key();
    const trusted = key();
    const signed = signIndex(smallImage().indexBytes, signer.privateKey, signer.raw);
    const server = await serveIndex(signed);
    const cacheDir = await dir();
    await expect(loadIndex(server.indexUrl, {}, { cacheDir, trust: [trusted.raw] })).rejects.toBeInstanceOf(
      SignatureError,
    );
    await expect(loadIndex(server.indexUrl, {}, { cacheDir, trust: [signer.raw] })).resolves.toMatchObject({
      from: 'network',
    });
    await expect(
      loadIndex(server.indexUrl, {}, { cacheDir, offline: true, trust: [trusted.raw] }),
    ).rejects.toBeInstanceOf(SignatureError);
  });

  it('checkTrust names the image and where it came from', () => {
    const img = smallImage(1, 'debian');
    expect(() => checkTrust(img.decoded, [key().raw], 'https://m.example/debian.idx')).toThrow(
      'refusing to mount debian (https://m.example/debian.idx): the index is not signed',
    );
  });
});

describe('loadIndex size bound', () => {
  it('a body past MAX_INDEX_BYTES is refused, not buffered without end', async () => {
    // The bound is a constant (256 MiB); streaming past it over loopback takes about a second.
    const chunk = Buffer.alloc(4 * 1024 * 1024, 0x41);
    let sent = 0;
    const server = await listen((_req, res) => {
      res.writeHead(200);
      const pump = () => {
        while (sent <= MAX_INDEX_BYTES + chunk.length) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const url = `${server.url}/img.idx`;
    const e = await loadIndex(url, {}, { timeoutMs: 30_000 }).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(IndexFormatError);
    expect((e as Error).message).toBe(`${url}: larger than ${MAX_INDEX_BYTES} bytes`);
  });
});
