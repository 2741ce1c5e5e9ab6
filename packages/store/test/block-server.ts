import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BlockRef, blockId, encodeBlock } from '@thfc/format';
import { drainedOrClosed } from '../src/drained-or-closed.js';

/**
 * A real node:http mirror for tests: serves `<prefix>/blocks/ab/<id>` from a
 * Map, and `fault` may turn any request into one of the failures a mirror
 * shows in the wild. A Map plus a hook is the fake; nothing is mocked.
 */
export type Fault =
  /** Answer with this status and a small text body. */
  | { readonly kind: 'status'; readonly status: number; readonly location?: string }
  /** Wait, then serve normally (or fail with `then`). Stops waiting if the client goes away. */
  | { readonly kind: 'delay'; readonly ms: number; readonly then?: Fault }
  /** Send the headers and half the body, then destroy the socket. */
  | { readonly kind: 'reset' }
  /** Serve the block minus its last byte, with a Content-Length that matches what is sent. */
  | { readonly kind: 'short' }
  /** Same length, one byte flipped in the middle. */
  | { readonly kind: 'corrupt' }
  /** The block plus trailing bytes, with a matching Content-Length. */
  | { readonly kind: 'long' }
  /** The block followed by an endless chunked stream (no Content-Length). */
  | { readonly kind: 'endless' }
  /** The headers, then one byte every `everyMs` until the block is sent or the client hangs up. */
  | { readonly kind: 'drip'; readonly everyMs: number }
  /**
   * The headers, then the block in `pieces` equal pieces, one every `everyMs`
   * (slow but steady); with `stallMs`, a pause that long after the first half.
   */
  | { readonly kind: 'steady'; readonly pieces: number; readonly everyMs: number; readonly stallMs?: number }
  /** Answer 429 or 503 with this Retry-After header. */
  | { readonly kind: 'busy'; readonly status: 429 | 503; readonly retryAfter: string };

export interface ServedRequest {
  readonly method: string;
  readonly path: string;
  readonly id: string | undefined;
}

export interface BlockServer {
  /** e.g. `http://127.0.0.1:PORT/store`. */
  url: string;
  readonly blocks: Map<string, Uint8Array>;
  /** Every request, in arrival order. */
  readonly requests: ServedRequest[];
  /** TCP connections accepted so far. */
  connections: number;
  /** Requests being answered right now, and the most seen at once. */
  active: number;
  maxActive: number;
  /** Bytes of body written by `endless` answers before the client hung up. */
  endlessBytes: number;
  fault?: (request: ServedRequest) => Fault | undefined;
  close(): Promise<void>;
}

export async function startBlockServer(prefix = '/store'): Promise<BlockServer> {
  const pattern = new RegExp(`^${prefix}/blocks/([0-9a-f]{2})/([0-9a-f]{40,64})$`);
  const state: BlockServer = {
    url: '',
    blocks: new Map(),
    requests: [],
    connections: 0,
    active: 0,
    maxActive: 0,
    endlessBytes: 0,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  const server = createServer((req, res) => {
    void answer(req, res).finally(() => {
      state.active--;
    });
  });
  server.keepAliveTimeout = 60_000;

  server.on('connection', () => {
    state.connections++;
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    const path = req.url ?? '';
    const m = pattern.exec(path);
    const id = m?.[2]?.startsWith(m[1] ?? '') ? m[2] : undefined;
    const request: ServedRequest = { method: req.method ?? 'GET', path, id };
    state.requests.push(request);
    await serve(req, res, state.fault?.(request), id);
  }

  async function serve(
    req: IncomingMessage,
    res: ServerResponse,
    fault: Fault | undefined,
    id: string | undefined,
  ): Promise<void> {
    if (fault?.kind === 'delay') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, fault.ms);
        res.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (res.destroyed) return;
      return serve(req, res, fault.then, id);
    }
    if (fault?.kind === 'busy') {
      res.writeHead(fault.status, { 'content-type': 'text/plain', 'retry-after': fault.retryAfter }).end('busy\n');
      return;
    }
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      if (fault.location) headers.location = fault.location;
      res.writeHead(fault.status, headers).end(`injected ${fault.status}\n`);
      return;
    }
    const block = id === undefined ? undefined : state.blocks.get(id);
    if (!block) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const head = req.method === 'HEAD';
    switch (fault?.kind) {
      case undefined:
        res.writeHead(200, { 'content-length': block.length }).end(head ? undefined : block);
        return;
      case 'reset': {
        res.writeHead(200, { 'content-length': block.length });
        res.write(block.subarray(0, block.length >> 1), () => res.socket?.destroy());
        return;
      }
      case 'short': {
        const body = block.subarray(0, block.length - 1);
        res.writeHead(200, { 'content-length': body.length }).end(head ? undefined : body);
        return;
      }
      case 'corrupt': {
        const body = Buffer.from(block);
        body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0xff;
        res.writeHead(200, { 'content-length': body.length }).end(head ? undefined : body);
        return;
      }
      case 'long': {
        const body = Buffer.concat([block, Buffer.alloc(100, 7)]);
        res.writeHead(200, { 'content-length': body.length }).end(head ? undefined : body);
        return;
      }
      case 'drip': {
        res.writeHead(200, { 'content-length': block.length });
        for (let i = 0; i < block.length && !res.destroyed; i++) {
          res.write(block.subarray(i, i + 1));
          await pauseOrClose(res, fault.everyMs);
        }
        res.end();
        return;
      }
      case 'steady': {
        res.writeHead(200, { 'content-length': block.length });
        const size = Math.ceil(block.length / fault.pieces);
        for (let i = 0; i < fault.pieces && !res.destroyed; i++) {
          const pause = fault.stallMs !== undefined && i === fault.pieces >> 1 ? fault.stallMs : fault.everyMs;
          await pauseOrClose(res, pause);
          res.write(block.subarray(i * size, (i + 1) * size));
        }
        res.end();
        return;
      }
      case 'endless': {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(block);
        const chunk = Buffer.alloc(64 * 1024, 1);
        // Keeps writing until the client hangs up; counts what it got out.
        while (!res.destroyed && state.endlessBytes < 1 << 30) {
          if (!res.write(chunk)) await drainedOrClosed(res);
          state.endlessBytes += chunk.length;
        }
        return;
      }
    }
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}${prefix}`;
  return state;
}

/** A block of `size` bytes, varied by `seed`, zstd-compressed as the packer stores it. */
export function makeBlock(seed: number, size = 16 * 1024): { ref: BlockRef; stored: Uint8Array } {
  const data = new Uint8Array(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    // Half noise, half runs: compressible enough to be zstd, varied enough to be distinct.
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = i % 64 < 32 ? x >>> 24 : seed & 0xff;
  }
  const enc = encodeBlock(data, { codec: 'zstd', level: 3 });
  return {
    ref: { id: blockId(data, 'sha1'), codec: enc.codec, storedSize: enc.bytes.length, size },
    stored: enc.bytes,
  };
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits `ms`, or less if the response closes; its close listener goes either way (one per pause would pile up). */
function pauseOrClose(res: ServerResponse, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const onClose = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve();
    }, ms);
    res.once('close', onClose);
  });
}
