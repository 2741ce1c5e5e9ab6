import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MirrorUnavailableError } from '@thfc/format';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  discardBody,
  getBounded,
  HttpStatusError,
  HttpTimeoutError,
  httpGet,
  ResponseTooLargeError,
  readBody,
} from '../src/http-get.js';

let server: Server;
let base: string;
let seen: IncomingHttpHeaders[] = [];
/** Bytes the endless route wrote before the client went away. */
let endlessWritten = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    switch (req.url) {
      case '/ok':
        res.writeHead(200, { etag: '"v1"' }).end('hello');
        return;
      case '/cond':
        if (req.headers['if-none-match'] === '"v1"') res.writeHead(304).end();
        else res.writeHead(200, { etag: '"v1"' }).end('fresh');
        return;
      case '/gone':
        res.writeHead(410).end('gone');
        return;
      case '/boom':
        res.writeHead(503).end('try later');
        return;
      case '/endless': {
        endlessWritten = 0;
        res.writeHead(200);
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = () => {
          while (!res.destroyed && endlessWritten < 1024 ** 3 && res.write(chunk)) endlessWritten += chunk.length;
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
      case '/silent':
        return; // never answers
      case '/stall-body':
        res.writeHead(200, { 'content-length': '10' });
        res.write('12345'); // and never the rest
        return;
      case '/declares-big':
        res.writeHead(200, { 'content-length': String(1024 ** 3) });
        res.write('12345'); // and never the rest
        return;
      case '/cut':
        res.writeHead(200, { 'content-length': '10' });
        res.write('12345', () => res.destroy());
        return;
      default: {
        const hop = /^\/r\/(\d+)$/.exec(req.url ?? '');
        if (!hop) res.writeHead(404).end();
        else if (hop[1] === '0') res.end('arrived');
        else res.writeHead(302, { location: `/r/${Number(hop[1]) - 1}` }).end();
      }
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const opts = { timeoutMs: 2000, maxBytes: 1024 };

describe('getBounded', () => {
  it('reads a 200 whole, sending the caller headers', async () => {
    seen = [];
    const body = await getBounded(`${base}/ok`, { ...opts, headers: { 'x-thfc': 'yes' } });
    expect(body?.toString()).toBe('hello');
    expect(seen[0]?.['x-thfc']).toBe('yes');
  });

  it('a status in `absent` is undefined; any other non-200 is HttpStatusError (an unavailable mirror)', async () => {
    expect(await getBounded(`${base}/gone`, { ...opts, absent: [404, 410] })).toBeUndefined();
    expect(await getBounded(`${base}/nope`, { ...opts, absent: [404] })).toBeUndefined();
    const e = await getBounded(`${base}/boom`, { ...opts, absent: [404] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HttpStatusError);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect(e).toMatchObject({ status: 503, code: 'ERR_MIRROR_UNAVAILABLE' });
    expect((e as Error).message).toBe(`${base}/boom unavailable: HTTP 503`);
    await expect(getBounded(`${base}/gone`, opts)).rejects.toMatchObject({ status: 410 });
  });

  it('a body over maxBytes is ResponseTooLargeError, and the rest of it is not read', async () => {
    const e = await getBounded(`${base}/endless`, { ...opts, maxBytes: 1024 * 1024 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ResponseTooLargeError);
    expect(e).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE', maxBytes: 1024 * 1024 });
    expect((e as Error).message).toBe(`${base}/endless: larger than 1048576 bytes`);
    await new Promise((r) => setTimeout(r, 100));
    // The connection was closed: the server stopped far short of its gigabyte (socket buffers hold a few MB).
    expect(endlessWritten).toBeLessThan(64 * 1024 * 1024);
  });

  it('a Content-Length over maxBytes is ResponseTooLargeError at once, before the body is read', async () => {
    const started = Date.now();
    const e = await getBounded(`${base}/declares-big`, { ...opts, timeoutMs: 5_000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ResponseTooLargeError);
    expect(e).toMatchObject({ maxBytes: 1024 });
    expect(Date.now() - started).toBeLessThan(2_000); // not the body's stall until the timeout
  });

  it('no answer, or a body that stops, within timeoutMs is HttpTimeoutError', async () => {
    for (const path of ['/silent', '/stall-body']) {
      const started = Date.now();
      const e = await getBounded(`${base}${path}`, { ...opts, timeoutMs: 200 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(HttpTimeoutError);
      expect((e as Error).message).toBe(`${base}${path} unavailable: no answer within 200 ms`);
      expect(Date.now() - started).toBeLessThan(1500);
    }
  });

  it("the caller's abort rejects with its reason, not a thfc error, before and during the body", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop')), 50);
    await expect(getBounded(`${base}/silent`, { ...opts, signal: ac.signal })).rejects.toThrow(/^stop$/);
    const during = new AbortController();
    setTimeout(() => during.abort(new Error('stop body')), 50);
    await expect(getBounded(`${base}/stall-body`, { ...opts, signal: during.signal })).rejects.toThrow(/^stop body$/);
    const already = AbortSignal.abort(new Error('never sent'));
    await expect(getBounded(`${base}/ok`, { ...opts, signal: already })).rejects.toThrow(/^never sent$/);
  });

  it('a refused connection or a cut body is MirrorUnavailableError', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(getBounded(`http://127.0.0.1:${port}/x`, opts)).rejects.toThrow(
      new MirrorUnavailableError(`http://127.0.0.1:${port}/x`, 'ECONNREFUSED'),
    );
    const cut = await getBounded(`${base}/cut`, opts).catch((x: unknown) => x);
    expect(cut).toBeInstanceOf(MirrorUnavailableError);
    expect(cut).not.toBeInstanceOf(HttpTimeoutError);
    expect((cut as Error).message).toMatch(/unavailable: body: /);
  });
});

describe('httpGet', () => {
  it('asks conditionally with an etag, and sends through the dispatcher given', async () => {
    const pool = new Pool(base, { connections: 1 });
    try {
      seen = [];
      const fresh = await httpGet(`${base}/cond`, { timeoutMs: 2000, dispatcher: pool });
      expect(fresh.statusCode).toBe(200);
      expect(fresh.headers.etag).toBe('"v1"');
      await discardBody(fresh);
      const same = await httpGet(`${base}/cond`, { timeoutMs: 2000, dispatcher: pool, etag: '"v1"' });
      expect(same.statusCode).toBe(304);
      await discardBody(same);
      expect(seen.map((h) => h['if-none-match'])).toEqual([undefined, '"v1"']);
      expect(pool.stats.connected).toBe(1);
    } finally {
      await pool.close();
    }
  });
});

describe('httpGet redirects', () => {
  it('follows at most maxRedirects, within the one timeout, and says where the answer came from', async () => {
    const res = await httpGet(`${base}/r/2`, { timeoutMs: 2000, maxRedirects: 2 });
    expect(res.url).toBe(`${base}/r/0`);
    expect((await readBody(res, 100)).toString()).toBe('arrived');
    await expect(httpGet(`${base}/r/3`, { timeoutMs: 2000, maxRedirects: 2 })).rejects.toThrow(
      `${base}/r/3 unavailable: more than 2 redirects (last to ${base}/r/0)`,
    );
  });

  it('by default a redirect is answered like any other status', async () => {
    const res = await httpGet(`${base}/r/1`, { timeoutMs: 2000 });
    expect([res.url, res.statusCode, res.headers.location]).toEqual([`${base}/r/1`, 302, '/r/0']);
    await discardBody(res);
    await expect(getBounded(`${base}/r/1`, opts)).rejects.toMatchObject({ status: 302 });
  });
});
