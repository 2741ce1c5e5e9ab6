import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { blockPath, decodeIndex } from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMirror } from '../src/serve.js';
import { get, packImage, tempDir, testIo, testMirror } from './helpers.js';

let work: string;
let cleanup: () => Promise<void>;
let store: string;
let mirror: RunningMirror;
let blockId: string;
let blockBytes: Buffer;
let indexBytes: Buffer;
const SECRET = 'TOP-SECRET-CONTENT-OUTSIDE-THE-STORE';

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir());
  store = join(work, 'store');
  await packImage(work, store, 'img', [
    ['t', 512 * 1024],
    ['r', 128 * 1024],
    ['z', 64 * 1024],
  ]);
  indexBytes = await readFile(join(store, 'img.idx'));
  blockId = (decodeIndex(indexBytes).index.ref(0) as { id: string }).id;
  blockBytes = await readFile(join(store, blockPath(blockId)));
  // Next to the store, and reachable through planted symlinks: it must never be served.
  await writeFile(join(work, 'secret.txt'), SECRET);
  await symlink(join(work, 'secret.txt'), join(store, 'leak.idx'));
  await symlink(join(work, 'secret.txt'), join(store, 'leak.json'));
  await mkdir(join(store, 'blocks', 'ff'), { recursive: true });
  await symlink(join(work, 'secret.txt'), join(store, 'blocks', 'ff', 'f'.repeat(40)));
  // A root file larger than one chunk, for streaming and ranges across chunk boundaries.
  await writeFile(join(store, 'big.txt'), Buffer.from(Array.from({ length: 700_000 }, (_, i) => i % 251)));
  // A private key kept at the store root by mistake: not a served kind of file.
  await writeFile(join(store, 'release.key'), SECRET);
  mirror = await testMirror({ store });
}, 60_000);

afterAll(async () => {
  await mirror?.close();
  await cleanup?.();
});

const url = (path: string) => `${mirror.url}${path.replace(/^\//, '')}`;

/** Sends raw bytes on a fresh connection and collects everything until the server closes it. */
function raw(port: number, text: string | Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString().slice(0, 200)}`));
    }, timeoutMs);
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.write(text);
  });
}

describe('serving', () => {
  it('serves a block as immutable content named by its hash', async () => {
    const r = await get(url(`/${blockPath(blockId)}`));
    expect(r.status).toBe(200);
    expect(r.body.equals(blockBytes)).toBe(true);
    expect(r.headers.etag).toBe(`"${blockId}"`);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.headers['content-length']).toBe(String(blockBytes.length));
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['accept-ranges']).toBe('bytes');
  });

  it('serves the same bytes streamed from disk when the memory cache is off, and from RAM the second time when on', async () => {
    const disk = await testMirror({ store, memoryCacheBytes: 0 });
    try {
      const r = await get(`${disk.url}${blockPath(blockId)}`);
      expect(r.body.equals(blockBytes)).toBe(true);
      expect(r.headers.etag).toBe(`"${blockId}"`);
      const part = await get(`${disk.url}${blockPath(blockId)}`, { range: 'bytes=5-9' });
      expect(part.body.equals(blockBytes.subarray(5, 10))).toBe(true);
      expect((await get(`${disk.url}metrics`)).body.toString()).toContain('thfc_mirror_memory_cache_bytes 0');
    } finally {
      await disk.close();
    }
    await get(url(`/${blockPath(blockId)}`));
    const again = await get(url(`/${blockPath(blockId)}`));
    expect(again.body.equals(blockBytes)).toBe(true);
    expect((await get(url('/metrics'))).body.toString()).toMatch(/thfc_mirror_memory_cache_hits_total [1-9]/);
  });

  it('answers HEAD with the same headers and no body', async () => {
    const r = await get(url(`/${blockPath(blockId)}`), {}, 'HEAD');
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(0);
    expect(r.headers['content-length']).toBe(String(blockBytes.length));
    expect(r.headers.etag).toBe(`"${blockId}"`);
  });

  it('answers If-None-Match with 304 for blocks and indexes', async () => {
    const b = await get(url(`/${blockPath(blockId)}`), { 'if-none-match': `"nope", "${blockId}"` });
    expect(b.status).toBe(304);
    expect(b.body.length).toBe(0);
    expect(b.headers.etag).toBe(`"${blockId}"`);
    const first = await get(url('/img.idx'));
    const again = await get(url('/img.idx'), { 'if-none-match': first.headers.etag as string });
    expect(again.status).toBe(304);
    expect((await get(url('/img.idx'), { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('serves indexes with their file hash as ETag, a short max-age and their format digest', async () => {
    const r = await get(url('/img.idx'));
    expect(r.status).toBe(200);
    expect(r.body.equals(indexBytes)).toBe(true);
    expect(r.headers.etag).toBe(`"${createHash('sha256').update(indexBytes).digest('hex')}"`);
    expect(r.headers['cache-control']).toBe('public, max-age=60');
    expect(r.headers['x-thfc-digest']).toBe(decodeIndex(indexBytes).digest);
    expect(r.headers['content-type']).toBe('text/plain; charset=us-ascii');
  });

  it('serves single byte ranges (206), refuses unsatisfiable ones (416), and honours If-Range', async () => {
    const p = url(`/${blockPath(blockId)}`);
    const r = await get(p, { range: 'bytes=10-19' });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 10-19/${blockBytes.length}`);
    expect(r.body.equals(blockBytes.subarray(10, 20))).toBe(true);
    const suffix = await get(p, { range: 'bytes=-5' });
    expect(suffix.body.equals(blockBytes.subarray(-5))).toBe(true);
    const bad = await get(p, { range: `bytes=${blockBytes.length}-` });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${blockBytes.length}`);
    const stale = await get(p, { range: 'bytes=0-0', 'if-range': '"other"' });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(blockBytes.length);
    // Across chunk boundaries of a file bigger than one read.
    const big = await readFile(join(store, 'big.txt'));
    const whole = await get(url('/big.txt'));
    expect(whole.body.equals(big)).toBe(true);
    const mid = await get(url('/big.txt'), { range: 'bytes=262000-600000' });
    expect(mid.status).toBe(206);
    expect(mid.body.equals(big.subarray(262000, 600001))).toBe(true);
  });

  it('lists published indexes at /index.json', async () => {
    const r = await get(url('/index.json'));
    expect(r.status).toBe(200);
    const doc = JSON.parse(r.body.toString());
    expect(doc.format).toBe('thfc-store-listing');
    expect(doc.indexes.map((i: { name: string }) => i.name)).toEqual(['img']);
    expect(doc.indexes[0].digest).toBe(decodeIndex(indexBytes).digest);
  });

  it('answers 404 for unknown names, 400 for malformed ones and 405 for other methods', async () => {
    expect((await get(url(`/blocks/ab/${'ab'.padEnd(40, '1')}`))).status).toBe(404);
    expect((await get(url('/nope.idx'))).status).toBe(404);
    expect((await get(url('/a/b/c'))).status).toBe(404);
    expect((await get(url('/blocks/ab/xyz'))).status).toBe(400);
    expect((await get(url(`/blocks/ab/${blockId.toUpperCase()}`))).status).toBe(400);
    const miss = await get(url(`/blocks/ab/${'ab'.padEnd(40, '1')}`));
    expect(miss.headers['cache-control']).toBe('no-store');
    const { request } = await import('undici');
    const post = await request(url('/img.idx'), { method: 'POST', body: 'x' });
    expect(post.statusCode).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    await post.body.dump();
  });

  it('answers /healthz and exposes /metrics in Prometheus text format', async () => {
    const h = await get(url('/healthz'));
    expect(h.status).toBe(200);
    expect(h.body.toString()).toBe('ok\n');
    await get(url(`/${blockPath(blockId)}`));
    const m = await get(url('/metrics'));
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = m.body.toString();
    expect(text).toMatch(/thfc_mirror_requests_total\{route="block",code="200"\} [1-9]/);
    expect(text).toMatch(/thfc_mirror_requests_total\{route="block",code="404"\} [1-9]/);
    expect(text).toMatch(/thfc_mirror_requests_total\{route="bad",code="400"\} [1-9]/);
    expect(text).toMatch(/thfc_mirror_response_bytes_total\{route="block"\} [1-9]\d*/);
    expect(text).toMatch(/thfc_mirror_request_duration_seconds_bucket\{route="block",le="\+Inf"\} [1-9]/);
    expect(text).toContain('thfc_mirror_inflight_requests 0'); // /metrics itself is exempt from the bound, so not counted
  });
});

describe('access log', () => {
  it('writes one line per request, and none when switched off', async () => {
    const io = testIo();
    const logged = await testMirror({ store, accessLog: true }, io);
    await get(`${logged.url}img.idx`);
    await get(`${logged.url}blocks/zz`);
    await logged.close();
    const lines = io.out().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\S+Z 127\.0\.0\.1 "GET \/img\.idx HTTP\/1\.1" 200 \d+ [\d.]+ms$/);
    expect(lines[1]).toMatch(/"GET \/blocks\/zz HTTP\/1\.1" 400 /);
    const quiet = testIo();
    const silent = await testMirror({ store, accessLog: false }, quiet);
    await get(`${silent.url}img.idx`);
    await silent.close();
    expect(quiet.out()).toBe('');
  });
});

describe('bounded concurrency', () => {
  it('answers 503 with Retry-After past --max-inflight, and /healthz still answers', async () => {
    // An upstream that never answers holds a pull-through request in flight.
    const held: import('node:http').ServerResponse[] = [];
    const stall: Server = createServer((_req, res) => held.push(res));
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    const upstream = `http://127.0.0.1:${(stall.address() as AddressInfo).port}/`;
    const empty = join(work, 'empty');
    const m = await testMirror({ store: empty, upstreams: [upstream], maxInflight: 1 });
    try {
      const pending = get(`${m.url}blocks/ab/${'ab'.padEnd(40, '2')}`);
      for (let i = 0; i < 100 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(held.length).toBe(1);
      const busy = await get(`${m.url}img.idx`);
      expect(busy.status).toBe(503);
      expect(busy.headers['retry-after']).toBe('1');
      expect((await get(`${m.url}healthz`)).status).toBe(200);
      for (const res of held) res.writeHead(500).end();
      expect([404, 502]).toContain((await pending).status);
    } finally {
      await m.close();
      await new Promise<void>((r) => stall.close(() => r()));
    }
  });
  it('releases every admitted slot once when pipelined bursts are cut off: 1,000 of them, then the bound is whole again', async () => {
    const MAX = 64;
    const m = await testMirror({ store, maxInflight: MAX });
    const targets = ['/img.idx', '/big.txt', `/blocks/ab/${'ab'.padEnd(40, '1')}`, '/index.json'];
    for (const id of decodeIndex(indexBytes).index.uniqueRefs().keys()) targets.push(`/${blockPath(id)}`);
    // A burst: 30-50 pipelined GETs on one connection, cut off after 0-3 ms
    // by a FIN or a reset, so some responses are mid-stream and others still
    // queued behind them.
    const burst = (n: number) =>
      new Promise<void>((resolve) => {
        const s = connect(m.address.port, '127.0.0.1');
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.resume();
        const count = 30 + (n % 21);
        let text = '';
        for (let i = 0; i < count; i++) text += `GET ${targets[(n + i) % targets.length]} HTTP/1.1\r\nHost: x\r\n\r\n`;
        s.write(text);
        setTimeout(() => (n % 3 === 0 ? s.resetAndDestroy() : n % 3 === 1 ? s.destroy() : s.end()), n % 4);
        setTimeout(() => s.destroy(), 2_000);
      });
    try {
      const BURSTS = 1_000;
      const PARALLEL = 20;
      for (let i = 0; i < BURSTS; i += PARALLEL) {
        await Promise.all(Array.from({ length: PARALLEL }, (_, j) => burst(i + j)));
      }
      for (let i = 0; i < 250 && m.server.gauges().connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(m.server.gauges().connections).toBe(0);
      expect(m.server.gauges().inflight).toBe(0);
      expect((await get(`${m.url}metrics`)).body.toString()).toContain('thfc_mirror_inflight_requests 0');
      // As many fresh clients as the bound, at once: every one admitted.
      const { Client } = await import('undici');
      const clients = Array.from({ length: MAX }, () => new Client(m.url));
      try {
        const statuses = await Promise.all(
          clients.map(async (c) => {
            const r = await c.request({ path: '/big.txt', method: 'GET' });
            await r.body.dump();
            return r.statusCode;
          }),
        );
        expect(statuses.filter((s) => s !== 200)).toEqual([]);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    } finally {
      await m.close();
    }
  }, 120_000);
});

describe('hostile requests', () => {
  it('never serves a file outside the store, with or without percent-encoding or symlinks', async () => {
    const port = mirror.address.port;
    const targets = [
      '/../secret.txt',
      '/../../../../etc/passwd',
      '/%2e%2e/secret.txt',
      '/%2E%2E%2Fsecret.txt',
      '/..%2fsecret.txt',
      '/blocks/../../secret.txt',
      '/blocks/%2e%2e/%2e%2e/secret.txt',
      '/..\\secret.txt',
      '/%5c..%5csecret.txt',
      '/secret.txt%00.idx',
      '/./../secret.txt',
      'http://127.0.0.1/../secret.txt',
      '/leak.idx',
      '/leak.json',
      `/blocks/ff/${'f'.repeat(40)}`,
      '/blocks',
      '/blocks/ab',
      '/release.key',
    ];
    for (const t of targets) {
      const res = await raw(port, `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const status = Number(res.slice(9, 12));
      expect([400, 404], `${t}: ${res.slice(0, 40)}`).toContain(status);
      expect(res).not.toContain(SECRET);
    }
    // A NUL byte in the request line is refused by the parser itself.
    const nul = await raw(port, Buffer.from('GET /secret.txt\0 HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(nul).toMatch(/^HTTP\/1\.1 400/);
    expect(nul).not.toContain(SECRET);
  });

  it('answers CONNECT with 405 and a request with no HTTP version (HTTP/0.9) with 400', async () => {
    const port = mirror.address.port;
    const tunnel = await raw(port, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
    expect(tunnel).toMatch(/^HTTP\/1\.1 405 /);
    expect(tunnel).toMatch(/\r\nAllow: GET, HEAD\r\n/i);
    expect(tunnel).toMatch(/\r\n\r\nonly GET and HEAD\n$/);
    // The bare request line of HTTP/0.9, with and without a blank line after it.
    for (const line of ['GET /img.idx\r\n\r\n', 'GET /img.idx\r\n']) {
      const res = await new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (c: Buffer) => {
          got += c.toString('latin1');
        });
        s.on('error', () => {});
        s.on('close', () => resolve(got));
        s.end(line);
      });
      expect(res, JSON.stringify(line)).toMatch(/^HTTP\/1\.1 400 /);
      expect(res).not.toContain(indexBytes.subarray(0, 20).toString('latin1'));
    }
    // HTTP/1.0 is still served.
    expect(await raw(port, 'GET /img.idx HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
    expect((await get(url('/healthz'))).status).toBe(200);
  });

  it('answers 431 to huge headers and keeps serving', async () => {
    const port = mirror.address.port;
    const res = await raw(port, `GET /img.idx HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 431/);
    const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    expect(await raw(port, `GET /img.idx HTTP/1.1\r\nHost: x\r\n${many}\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    expect((await get(url('/healthz'))).status).toBe(200);
  });

  it('drops slowloris connections within the headers timeout while normal requests still work', async () => {
    const m = await testMirror({ store, server: { headersTimeoutMs: 1000, timeoutCheckMs: 200 } });
    try {
      const port = m.address.port;
      const started = Date.now();
      // One dribbles a header byte every 100 ms; one connects and sends nothing.
      const dribbler = connect(port, '127.0.0.1');
      const silent = connect(port, '127.0.0.1');
      const closedAt = (s: Socket) =>
        new Promise<number>((resolve) => {
          s.on('error', () => {});
          s.resume(); // read the 408 and the FIN, or 'close' never comes
          s.on('close', () => resolve(Date.now() - started));
        });
      const dribbleClosed = closedAt(dribbler);
      const silentClosed = closedAt(silent);
      dribbler.write('GET /img.idx HTTP/1.1\r\nHost: x\r\n');
      let n = 0;
      const drip = setInterval(() => {
        if (!dribbler.destroyed && n++ < 100) dribbler.write('X');
      }, 100);
      try {
        // Meanwhile, real requests are answered.
        for (let i = 0; i < 5; i++) {
          expect((await get(`${m.url}img.idx`)).status).toBe(200);
          await new Promise((r) => setTimeout(r, 100));
        }
        const [a, b] = await Promise.all([dribbleClosed, silentClosed]);
        expect(a).toBeLessThan(3000);
        expect(b).toBeLessThan(3000);
      } finally {
        clearInterval(drip);
        dribbler.destroy();
        silent.destroy();
      }
      expect((await get(`${m.url}healthz`)).status).toBe(200);
    } finally {
      await m.close();
    }
  });

  it('survives 2000 concurrent connections, bounded, and keeps answering /healthz', async () => {
    const m = await testMirror({ store, maxInflight: 64 });
    const N = 2000;
    const sockets: Socket[] = [];
    const { Client } = await import('undici');
    const probe = new Client(m.url);
    const health = async () => {
      const r = await probe.request({ path: '/healthz', method: 'GET' });
      await r.body.dump();
      return r.statusCode;
    };
    try {
      // Open them all first (bounded loop), then fire one block request on each at once.
      for (let i = 0; i < N; i++) {
        const s = connect(m.address.port, '127.0.0.1');
        s.on('error', () => {});
        sockets.push(s);
      }
      await Promise.all(
        sockets.map((s) => new Promise<void>((r) => (s.connecting ? s.once('connect', () => r()) : r()))),
      );
      for (let i = 0; i < 250 && m.server.gauges().connections < N; i++) await new Promise((r) => setTimeout(r, 20));
      expect(m.server.gauges().connections).toBe(N);
      const statuses = sockets.map(
        (s) =>
          new Promise<number>((resolve) => {
            let head = '';
            s.on('data', (c: Buffer) => {
              head += c.toString('latin1', 0, Math.min(c.length, 16));
              if (head.length >= 12) resolve(Number(head.slice(9, 12)));
            });
            s.on('close', () => resolve(Number(head.slice(9, 12)) || 0));
            s.write(`GET /${blockPath(blockId)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
          }),
      );
      expect(await health()).toBe(200);
      const got = await Promise.all(statuses);
      const by = (code: number) => got.filter((s) => s === code).length;
      expect(by(200) + by(503)).toBe(N);
      expect(by(200)).toBeGreaterThanOrEqual(64);
      expect(await health()).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
      await probe.close();
      for (let i = 0; i < 100 && m.server.gauges().connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(m.server.gauges().connections).toBe(0);
      await m.close();
    }
  }, 60_000);
});
