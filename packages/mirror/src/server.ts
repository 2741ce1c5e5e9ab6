import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError, ThfcError, UsageError } from '@thfc/format';
import { type Logger, SILENT_LOGGER } from '@thfc/store';
import type { AccessLog } from './access-log.js';
import { Admission } from './admission.js';
import type { BlockMemoryCache } from './block-memory-cache.js';
import { BufferPool } from './buffer-pool.js';
import type { ListenAddress } from './listen-address.js';
import type { Metrics, MetricsGauges } from './metrics.js';
import type { PullThrough } from './pull-through.js';
import { serveBlock } from './routes/block-route.js';
import { Exchange } from './routes/exchange.js';
import { serveRootFile } from './routes/file-route.js';
import { serveHealth } from './routes/health-route.js';
import { serveListing } from './routes/listing-route.js';
import { serveMetrics } from './routes/metrics-route.js';
import { parseRequestTarget } from './routes/request-target.js';
import type { RouteContext } from './routes/route-context.js';
import type { StoreReader } from './store-reader.js';

/**
 * Requests answered at once before new ones get 503. Each holds at most one
 * 256 KiB chunk (64 MiB in all) and, with pull-through, one upstream fetch.
 * 256 keeps a 2-core machine's queue short enough that a request admitted is
 * answered in well under a second at loopback speed, while a client fleet's
 * usual 4 connections per client still fit 64 clients at full concurrency.
 */
export const DEFAULT_MAX_INFLIGHT = 256;

/**
 * A client gets 10 s to send its request headers. Ours send ~100 bytes at
 * once; only a slowloris attacker or a dead link needs longer, and each one
 * holds a socket until this fires.
 */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;

/** The whole request (a GET has no body) within 30 s; never below the headers timeout. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * Node checks the two timeouts above on a timer, 30 s by default, which
 * would let a slowloris connection live 3× its limit; once a second costs
 * one walk over the connection list.
 */
export const DEFAULT_TIMEOUT_CHECK_MS = 1_000;

/**
 * An idle keep-alive connection is kept 30 s. A mounting client reads in
 * bursts (boot, then an application start); a new TCP handshake per burst
 * costs more than an idle socket, which costs one descriptor.
 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 30_000;

/**
 * A connection with no progress for 60 s in either direction is dropped: a
 * client that stopped reading its response would otherwise hold an in-flight
 * slot (and a descriptor) forever.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * 8 KiB of request headers, as nginx's default buffers allow. Our clients
 * send about 100 bytes; past the limit Node answers 431 and closes.
 */
export const DEFAULT_MAX_HEADER_BYTES = 8 * 1024;

/**
 * Open connections accepted; past this the kernel's accept is answered with
 * an immediate close. 10000 stays well under the descriptor limit Node runs
 * with (20000 on the dev machine) after the descriptor cache's 1024.
 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** Pending connections the kernel queues for accept: bursts of thousands of clients connecting at once. */
export const DEFAULT_LISTEN_BACKLOG = 2048;

/** A 503 says "come back in 1 s": long enough for the in-flight requests (ms each) to drain. */
export const RETRY_AFTER_SECONDS = 1;

/** A CONNECT's 405 is followed by up to 2 s for the client to close its side before the socket is cut. */
const CONNECT_LINGER_MS = 2_000;

/** On shutdown, requests in flight get 5 s to finish before their connections are cut. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

export interface MirrorServerComponents {
  readonly store: StoreReader;
  readonly metrics: Metrics;
  readonly pull?: PullThrough | undefined;
  /** Absent with --no-access-log. */
  readonly accessLog?: AccessLog | undefined;
  readonly logger?: Logger;
  readonly pool?: BufferPool;
  /** Hot blocks in RAM (block-memory-cache.ts); absent: every block is read from the store. */
  readonly memory?: BlockMemoryCache | undefined;
}

export interface MirrorServerOptions {
  readonly maxInflight?: number | undefined;
  readonly headersTimeoutMs?: number | undefined;
  readonly requestTimeoutMs?: number | undefined;
  readonly timeoutCheckMs?: number | undefined;
  readonly keepAliveTimeoutMs?: number | undefined;
  readonly idleTimeoutMs?: number | undefined;
  readonly maxHeaderBytes?: number | undefined;
  readonly maxConnections?: number | undefined;
  readonly shutdownGraceMs?: number | undefined;
}

/**
 * The mirror's HTTP server (node:http): static, immutable files from a store
 * (routes/*), bounded and hardened:
 * - at most `maxInflight` requests in flight, then 503 + Retry-After
 *   (/healthz and /metrics are exempt: they touch no file);
 * - slow or oversized requests are cut by Node's header limit (431) and
 *   timeouts (408), checked every second;
 * - every answered request is counted in the metrics and, unless switched
 *   off, written to the access log.
 * It stops on close() or when the listen signal aborts.
 */
export class MirrorServer {
  private readonly server: Server;
  private readonly ctx: RouteContext;
  private readonly logger: Logger;
  private readonly admission: Admission;
  private readonly shutdownGraceMs: number;
  private connections = 0;
  /** Exchanges not yet closed, by connection: closing the connection closes them all. */
  private readonly open = new WeakMap<Socket, Set<Exchange>>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly components: MirrorServerComponents,
    options: MirrorServerOptions = {},
  ) {
    this.logger = components.logger ?? SILENT_LOGGER;
    this.admission = new Admission(positive('maxInflight', options.maxInflight ?? DEFAULT_MAX_INFLIGHT));
    this.shutdownGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    const headersTimeout = positive('headersTimeoutMs', options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS);
    const requestTimeout = Math.max(
      headersTimeout,
      positive('requestTimeoutMs', options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
    );
    this.ctx = {
      store: components.store,
      pull: components.pull,
      pool: components.pool ?? new BufferPool(),
      memory: components.memory,
      metrics: components.metrics,
      gauges: () => this.gauges(),
      logger: this.logger,
    };
    this.server = createServer(
      {
        maxHeaderSize: positive('maxHeaderBytes', options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES),
        headersTimeout,
        requestTimeout,
        connectionsCheckingInterval: positive('timeoutCheckMs', options.timeoutCheckMs ?? DEFAULT_TIMEOUT_CHECK_MS),
        noDelay: true,
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.keepAliveTimeout = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
    this.server.maxRequestsPerSocket = 0;
    this.server.maxConnections = positive('maxConnections', options.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.server.setTimeout(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, (socket) => socket.destroy());
    this.server.on('connection', (socket: Socket) => {
      this.connections++;
      const open = new Set<Exchange>();
      this.open.set(socket, open);
      socket.once('close', () => {
        this.connections--;
        for (const ex of open) {
          ex.res.destroy();
          this.onDone(ex);
        }
      });
    });
    this.server.on('clientError', (err, socket) => this.onClientError(err, socket));
    this.server.on('connect', (req: IncomingMessage, socket: Duplex) => this.onConnect(req, socket));
  }

  /** Current figures for /metrics and the heartbeat. */
  gauges(): MetricsGauges {
    return {
      inflight: this.admission.inflight,
      maxInflight: this.admission.max,
      connections: this.connections,
      openFiles: this.components.store.openFiles,
      memoryCacheBytes: this.components.memory?.bytes ?? 0,
      memoryCacheHits: this.components.memory?.hits ?? 0,
    };
  }

  /** Starts listening (port 0 picks a free one); aborting `signal` closes the server. */
  async listen(address: ListenAddress, signal: AbortSignal): Promise<ListenAddress> {
    signal.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => reject(listenError(e, address));
      this.server.once('error', onError);
      this.server.listen({ host: address.host, port: address.port, backlog: DEFAULT_LISTEN_BACKLOG }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (e) => this.logger.fault(`server: ${e.message}`));
    signal.addEventListener('abort', () => void this.close(), { once: true });
    const bound = this.server.address() as AddressInfo;
    return { host: bound.address, port: bound.port };
  }

  /**
   * Stops accepting, closes idle connections, lets requests in flight finish
   * for up to the grace period, then cuts what is left. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      if (this.admission.inflight > 0) {
        const grace = new Promise<void>((resolve) => setTimeout(resolve, this.shutdownGraceMs).unref());
        await Promise.race([this.admission.drained(), grace]);
      }
      this.server.closeAllConnections();
      await closed;
      this.components.accessLog?.flush();
    })();
    return this.closing;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const target = parseRequestTarget(req.url);
    const ex = new Exchange(req, res, target.kind, performance.now());
    this.open.get(req.socket)?.add(ex);
    res.once('close', () => this.onDone(ex));
    if (req.httpVersionMajor !== 1) {
      // HTTP/0.9 (a request line with no version): its answer would have no status line or headers.
      res.shouldKeepAlive = false;
      ex.reply(400, 'bad request: HTTP/1.0 or HTTP/1.1 only\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      ex.reply(405, 'only GET and HEAD\n', { allow: 'GET, HEAD' });
      return;
    }
    switch (target.kind) {
      case 'bad':
        ex.reply(400, `bad request: ${target.reason}\n`);
        return;
      case 'unknown':
        ex.reply(404, 'not found\n');
        return;
      case 'healthz':
        this.run(ex, serveHealth(ex, this.ctx));
        return;
      case 'metrics':
        serveMetrics(ex, this.ctx);
        return;
    }
    const slot = this.closing ? undefined : this.admission.admit();
    if (!slot) {
      ex.reply(503, 'busy, retry later\n', { 'retry-after': String(RETRY_AFTER_SECONDS) });
      return;
    }
    ex.whenClosed(() => slot.release());
    switch (target.kind) {
      case 'block':
        this.run(ex, serveBlock(ex, target.id, this.ctx));
        return;
      case 'file':
        this.run(ex, serveRootFile(ex, target.name, this.ctx));
        return;
      case 'listing':
        this.run(ex, serveListing(ex, this.ctx));
        return;
    }
  }

  private run(ex: Exchange, work: Promise<void>): void {
    work.catch((e) => {
      const expected = e instanceof ThfcError;
      this.components.metrics.error('io');
      this.logger.fault(
        `${ex.req.method} ${ex.route}: ${expected ? (e as Error).message : ((e as Error)?.stack ?? String(e))}`,
      );
      ex.reply(500, 'the mirror could not read its store\n');
    });
  }

  /**
   * The one end of every exchange, from its response's 'close' or its
   * connection's, whichever comes first: closing the exchange releases its
   * slot; then it is recorded.
   */
  private onDone(ex: Exchange): void {
    if (!ex.close()) return;
    this.open.get(ex.req.socket)?.delete(ex);
    const res = ex.res;
    if (!res.writableFinished) this.components.metrics.error('aborted');
    const ms = performance.now() - ex.started;
    this.components.metrics.request(ex.route, res.statusCode, ex.bytes, ms / 1000);
    this.components.accessLog?.record({
      remote: ex.req.socket.remoteAddress,
      method: ex.req.method,
      target: ex.req.url,
      status: res.statusCode,
      bytes: ex.bytes,
      ms,
    });
  }

  /**
   * CONNECT asks for a tunnel, which a mirror never opens: 405, then the
   * connection is closed (Node hands the socket over raw, so the answer is
   * written by hand). Counted and logged like any request.
   */
  private onConnect(req: IncomingMessage, socket: Duplex): void {
    const body = 'only GET and HEAD\n';
    socket.on('error', () => {});
    socket.end(
      `HTTP/1.1 405 ${STATUS_CODES[405]}\r\nAllow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\n` +
        `Content-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
    // Read what else the client sends (unread bytes at close would turn the FIN into a reset that can
    // discard the answer) until it closes its side, for at most CONNECT_LINGER_MS.
    socket.resume();
    setTimeout(() => socket.destroy(), CONNECT_LINGER_MS).unref();
    this.components.metrics.request(parseRequestTarget(req.url).kind, 405, body.length, 0);
    this.components.accessLog?.record({
      remote: (socket as Socket).remoteAddress,
      method: req.method,
      target: req.url,
      status: 405,
      bytes: body.length,
      ms: 0,
    });
  }

  /**
   * A request Node could not parse or that broke a limit: 431 for oversized
   * headers, 408 for a request too slow to arrive, 400 otherwise; then the
   * connection is closed. Counted and logged like any request.
   */
  private onClientError(err: Error & { code?: string }, socket: Duplex): void {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    if (err.code !== 'ECONNRESET' && socket.writable && (socket as Socket).bytesWritten === 0) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
    if (err.code === 'ECONNRESET') return;
    this.components.metrics.request('bad', status, 0, 0);
    this.components.accessLog?.record({
      remote: (socket as Socket).remoteAddress,
      method: undefined,
      target: `(${err.code ?? 'unparsable request'})`,
      status,
      bytes: 0,
      ms: 0,
    });
  }
}

function positive(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number ≥ 1, not ${n}`);
  return n;
}

function listenError(e: NodeJS.ErrnoException, a: ListenAddress): Error {
  const where = `${a.host}:${a.port}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return new UsageError(`cannot listen on ${where}: the address is in use (another server? pick --listen)`);
    case 'EACCES':
      return new UsageError(`cannot listen on ${where}: permission denied (ports below 1024 need root)`);
    case 'EADDRNOTAVAIL':
      return new UsageError(`cannot listen on ${where}: no such local address`);
    default:
      return new UsageError(`cannot listen on ${where}: ${e.message}`);
  }
}
