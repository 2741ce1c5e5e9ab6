import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { drainedOrClosed } from '@thfc/store';
import { type Dispatcher, Pool } from 'undici';
import { decideFault, type FaultSpec } from './fault-spec.js';

/**
 * Request headers passed to the upstream: ranges (a raw image read through
 * nbdkit curl or qemu's curl driver is nothing but range requests) and
 * revalidation. Everything else is the proxy's own business.
 */
const FORWARDED_REQUEST_HEADERS = ['range', 'if-range', 'if-none-match', 'if-modified-since'] as const;
/** Hop-by-hop, or describing the upstream's framing of a body this proxy re-frames. */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/**
 * An HTTP proxy in front of one upstream mirror that plays a WAN link:
 * latency with jitter before each response, one shared bandwidth limit,
 * random 503s and mid-body resets, and dripped bodies (a few bytes at a time,
 * a slow mirror's tail). For tests and benchmarks on loopback.
 */
export class WanProxy {
  private server: Server | undefined;
  private readonly pool: Pool;
  private readonly sockets = new Set<Socket>();
  /** When the shared link is next free (ms, performance.now clock). */
  private linkFreeAt = 0;
  readonly counters = { requests: 0, errors: 0, resets: 0, drips: 0, bytes: 0 };

  constructor(
    private readonly upstream: string,
    readonly spec: FaultSpec,
    private readonly random: () => number = Math.random,
  ) {
    this.pool = new Pool(new URL(upstream).origin, { connections: 16 });
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo;
    return `http://${a.address}:${a.port}${new URL(this.upstream).pathname.replace(/\/?$/, '/')}`;
  }

  /** Rejects (EADDRINUSE, EACCES…) when the address cannot be bound. */
  async listen(host = '127.0.0.1', port = 0): Promise<this> {
    // One failed exchange (an upstream cut mid-body, a client gone) ends that response, never the proxy.
    const server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.requests++;
    let up: Dispatcher.ResponseData;
    try {
      up = await this.forward(req);
    } catch {
      res.writeHead(502).end();
      return;
    }
    const body = Buffer.from(await up.body.arrayBuffer());
    const fate = decideFault(this.spec, body.length, this.random);
    if (fate.kind === 'error') {
      this.counters.errors++;
      res.writeHead(503, { 'retry-after': '1' }).end();
      return;
    }
    if (fate.delayMs > 0) await sleep(fate.delayMs);
    const headers = passedHeaders(up.headers);
    if (req.method !== 'HEAD') headers['Content-Length'] = String(body.length);
    res.writeHead(up.statusCode, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (fate.drip) {
      this.counters.drips++;
      await this.drip(res, body);
      return;
    }
    await this.send(res, body, fate.resetAfter);
  }

  /** The client's request, as GET or HEAD of the same path with the FORWARDED_REQUEST_HEADERS, to the upstream. */
  private forward(req: IncomingMessage): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    return this.pool.request({
      path: req.url ?? '/',
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
      headers,
    });
  }

  /**
   * Sends `body` in 16 KiB pieces through the shared link, then ends the response; with `resetAfter`, resets the
   * connection instead of sending the piece that would cross that many bytes.
   */
  private async send(res: ServerResponse, body: Buffer, resetAfter: number | undefined): Promise<void> {
    const chunk = 16 * 1024;
    for (let off = 0; off < body.length; off += chunk) {
      const piece = body.subarray(off, Math.min(body.length, off + chunk));
      if (resetAfter !== undefined && off + piece.length > resetAfter) {
        this.counters.resets++;
        res.socket?.destroy();
        return;
      }
      await this.pace(piece.length);
      if (res.destroyed) return; // the client went away while the link was busy
      if (!res.write(piece)) {
        await drainedOrClosed(res);
        if (res.destroyed) return; // the client went away
      }
      this.counters.bytes += piece.length;
    }
    res.end();
  }

  /**
   * Sends `body` at the spec's drip pace until it is all sent or the client
   * leaves (a closed proxy destroys every socket, so this ends with it). The
   * drip bypasses the bandwidth budget: a few bytes a tick cannot matter.
   */
  private async drip(res: ServerResponse, body: Buffer): Promise<void> {
    const { dripBytes, dripEveryMs } = this.spec;
    for (let off = 0; off < body.length; off += dripBytes) {
      if (off > 0) await sleep(dripEveryMs);
      if (res.destroyed) return;
      const piece = body.subarray(off, Math.min(body.length, off + dripBytes));
      res.write(piece);
      this.counters.bytes += piece.length;
    }
    res.end();
  }

  /** Reserves `bytes` of the shared link and waits until they would have gone through it. */
  private async pace(bytes: number): Promise<void> {
    if (this.spec.bandwidth <= 0) return;
    const now = performance.now();
    const start = Math.max(now, this.linkFreeAt);
    this.linkFreeAt = start + (bytes / this.spec.bandwidth) * 1000;
    const wait = this.linkFreeAt - now;
    if (wait > 1) await sleep(wait);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    await this.pool.close();
  }
}

/** `accept-ranges` → `Accept-Ranges`, as most servers write header names. */
function titleCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The upstream's response headers to pass on: all but DROPPED_RESPONSE_HEADERS. A header the upstream sent twice
 * (nginx's own `Accept-Ranges` plus an add_header one) comes as an array. Names go out in the usual capitals:
 * httpfs2 looks for `Accept-Ranges: bytes` letter for letter.
 */
function passedHeaders(upstream: Dispatcher.ResponseData['headers']): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(upstream))
    if (v !== undefined && !DROPPED_RESPONSE_HEADERS.has(k)) headers[titleCase(k)] = v;
  return headers;
}
