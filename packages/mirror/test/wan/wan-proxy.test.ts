import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFaultSpec } from '../../src/wan/fault-spec.js';
import { WanProxy } from '../../src/wan/wan-proxy.js';

const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
/** Large enough that a slow reader makes the proxy wait for 'drain' dozens of times. */
const big = Buffer.alloc(8 * 1024 * 1024, 7);
let upstream: Server;
let base: string;

beforeAll(async () => {
  // Answers a single `bytes=A-B` range with 206, as a static file server does for nbdkit curl.
  upstream = createServer((req, res) => {
    if (req.url?.endsWith('/twice')) {
      // One header sent twice, as nginx does with its own Accept-Ranges plus an add_header one.
      res.setHeader('accept-ranges', ['bytes', 'bytes']);
      return res.writeHead(200, { 'content-length': body.length }).end(body);
    }
    if (req.url?.endsWith('/big')) return res.writeHead(200, { 'content-length': big.length }).end(big);
    if (req.url?.endsWith('/cut')) {
      // Promises the whole body, sends a piece, and hangs up: an upstream that dies mid-response.
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 1000), () => res.destroy());
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return res.writeHead(200, { 'content-length': body.length }).end(body);
    const [a, b] = [Number(m[1]), Number(m[2])];
    res
      .writeHead(206, { 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${body.length}` })
      .end(body.subarray(a, b + 1));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/store/`;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

async function get(url: string): Promise<{ status: number; bytes: number; ms: number; error?: string }> {
  const t = performance.now();
  try {
    const res = await request(url);
    const b = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, bytes: b.length, ms: performance.now() - t };
  } catch (e) {
    return { status: 0, bytes: 0, ms: performance.now() - t, error: (e as Error).message };
  }
}

describe('WanProxy', () => {
  it('adds the latency and keeps to the bandwidth', async () => {
    const p = await new WanProxy(base, parseFaultSpec('latency=80ms,bandwidth=2MB/s')).listen();
    try {
      const r = await get(`${p.url}blocks/aa/x`);
      expect(r).toMatchObject({ status: 200, bytes: body.length });
      expect(r.ms).toBeGreaterThanOrEqual(80 + 100 - 15); // 80 ms + 200 KB at 2 MB/s
      expect(p.url).toMatch(/\/store\/$/);
    } finally {
      await p.close();
    }
  });

  it('one bandwidth budget for all connections: four parallel bodies take four times as long as one', async () => {
    // Per-connection pacing would finish each 200 KB body at 2 MB/s in ~100 ms; one shared link takes ~400 ms for all.
    const p = await new WanProxy(base, parseFaultSpec('bandwidth=2MB/s')).listen();
    try {
      const t = performance.now();
      const done = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          get(`${p.url}blocks/${i}`).then((r) => ({ ...r, at: performance.now() - t })),
        ),
      );
      for (const r of done) expect(r).toMatchObject({ status: 200, bytes: body.length });
      const last = Math.max(...done.map((r) => r.at));
      expect(last).toBeGreaterThanOrEqual((4 * body.length * 1000) / 2e6 - 20);
      expect(p.counters.bytes).toBe(4 * body.length);
    } finally {
      await p.close();
    }
  });

  it('drips a body at the configured pace, whole and right', async () => {
    const p = await new WanProxy(base, parseFaultSpec('drip-rate=1,drip=100B/30ms')).listen();
    try {
      const t = performance.now();
      const res = await request(`${p.url}guest.img`, { headers: { range: 'bytes=0-999' } });
      const got = Buffer.from(await res.body.arrayBuffer());
      expect(res.statusCode).toBe(206);
      expect(got.equals(body.subarray(0, 1000))).toBe(true);
      expect(performance.now() - t).toBeGreaterThanOrEqual(9 * 30 - 10); // 10 pieces, 9 waits between them
      expect(p.counters).toMatchObject({ drips: 1, bytes: 1000 });
    } finally {
      await p.close();
    }
  });

  it('stops dripping when the client leaves, and a dripping response does not hold up close()', async () => {
    const p = await new WanProxy(base, parseFaultSpec('drip-rate=1,drip=1B/20ms')).listen();
    let closed = false;
    try {
      const ac = new AbortController();
      const res = await request(`${p.url}blocks/slow`, { signal: ac.signal });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe(String(body.length));
      await new Promise((r) => setTimeout(r, 200));
      ac.abort();
      await res.body.arrayBuffer().catch(() => {});
      await new Promise((r) => setTimeout(r, 100)); // the proxy sees the close at its next tick
      const sent = p.counters.bytes;
      expect(sent).toBeGreaterThan(0);
      expect(sent).toBeLessThan(30);
      await new Promise((r) => setTimeout(r, 200));
      expect(p.counters.bytes).toBe(sent);
      // A second dripping response, left open: close() ends it.
      const open = await request(`${p.url}blocks/slow2`);
      const t = performance.now();
      await p.close();
      closed = true;
      expect(performance.now() - t).toBeLessThan(1000);
      await open.body.arrayBuffer().catch(() => {});
    } finally {
      if (!closed) await p.close();
    }
  });

  it('injects 503s and resets at the configured rates', async () => {
    let x = 0;
    const rolls = [0.1, 0.9, 0.9, 0.1, 0.5]; // request 1: error; request 2: serve, no jitter, reset at half
    const p = await new WanProxy(
      base,
      parseFaultSpec('error-rate=0.5,reset-rate=0.5'),
      () => rolls[x++ % rolls.length] as number,
    ).listen();
    try {
      expect((await get(`${p.url}a`)).status).toBe(503);
      const cut = await get(`${p.url}b`);
      expect(cut.bytes).toBeLessThan(body.length);
      expect(p.counters).toMatchObject({ errors: 1, resets: 1 });
    } finally {
      await p.close();
    }
  });

  it('a slow reader: each wait for the client leaves no listener behind (no MaxListeners warning)', async () => {
    const p = await new WanProxy(base, parseFaultSpec('latency=0ms')).listen();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const got = await new Promise<number>((resolve, reject) => {
        httpGet(`${p.url}big`, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            // Read a piece, then stall: the proxy's socket buffer fills and it waits for 'drain' again.
            res.pause();
            setTimeout(() => res.resume(), 1);
          });
          res.on('end', () => resolve(n));
          res.on('error', reject);
        }).on('error', reject);
      });
      expect(got).toBe(big.length);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      await p.close();
    }
  });

  it('passes range requests through: 206, the exact slice and its content-range', async () => {
    const p = await new WanProxy(base, parseFaultSpec('latency=10ms')).listen();
    try {
      const res = await request(`${p.url}guest.img`, { headers: { range: 'bytes=1000-1999' } });
      const got = Buffer.from(await res.body.arrayBuffer());
      expect(res.statusCode).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes 1000-1999/${body.length}`);
      expect(res.headers['content-length']).toBe('1000');
      expect(got.equals(body.subarray(1000, 2000))).toBe(true);
      expect(p.counters.bytes).toBe(1000);
    } finally {
      await p.close();
    }
  });

  it('passes on a header the upstream sent twice, named in the usual capitals (nbdkit curl and httpfs2 need Accept-Ranges)', async () => {
    const p = await new WanProxy(base, parseFaultSpec('')).listen();
    try {
      const raw = await new Promise<string[]>((resolve, reject) => {
        httpGet(`${p.url}twice`, { method: 'HEAD' }, (res) => {
          res.resume();
          resolve(res.rawHeaders);
        }).on('error', reject);
      });
      expect(raw).toContain('Accept-Ranges');
      expect(raw[raw.indexOf('Accept-Ranges') + 1]).toBe('bytes');
      expect(raw).not.toContain('accept-ranges');
    } finally {
      await p.close();
    }
  });

  it('rejects when its address cannot be bound', async () => {
    const port = (upstream.address() as AddressInfo).port;
    await expect(new WanProxy(base, parseFaultSpec('')).listen('127.0.0.1', port)).rejects.toThrow(/EADDRINUSE/);
  });

  it('an upstream that dies mid-body ends that response only; the proxy keeps serving', async () => {
    const p = await new WanProxy(base, parseFaultSpec('')).listen();
    try {
      const cut = await get(`${p.url}cut`);
      expect(cut.bytes).toBeLessThan(body.length);
      expect(await get(`${p.url}whole`)).toMatchObject({ status: 200, bytes: body.length });
    } finally {
      await p.close();
    }
  });
});
