import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { CommandIo } from '@thfc/cli';
import { UsageError } from '@thfc/format';
import { LineLogger, type Logger } from '@thfc/store';
import { AccessLog } from './access-log.js';
import { BlockMemoryCache, DEFAULT_MEMORY_CACHE_BYTES } from './block-memory-cache.js';
import { BufferPool } from './buffer-pool.js';
import { startHeartbeat } from './heartbeat.js';
import { DEFAULT_SERVE_LISTEN, formatListen, type ListenAddress, parseServeListen } from './listen-address.js';
import { Metrics } from './metrics.js';
import { PullThrough } from './pull-through.js';
import { RefBook } from './ref-book.js';
import { mirrorIdFromUrl, normaliseMirrorUrl } from './registry/mirror-record.js';
import { openRegistry } from './registry/open-registry.js';
import type { Registry } from './registry/registry.js';
import { MirrorServer, type MirrorServerOptions } from './server.js';
import { StoreReader } from './store-reader.js';
import { Upstream } from './upstream.js';

/** Region a mirror reports when none is given: matched only by a networks file rule that names it. */
export const DEFAULT_REGION = 'default';

/** The store's health is re-checked every 2 s, the heartbeat's interval, so each beat carries a fresh answer. */
const HEALTH_CHECK_MS = 2_000;

export interface ServeOptions {
  readonly store: string;
  /** HOST:PORT (default 127.0.0.1:8080). */
  readonly listen?: string | undefined;
  /** Mirrors to pull missing blocks and indexes from, in preference order. */
  readonly upstreams?: readonly string[] | undefined;
  readonly region?: string | undefined;
  /** The URL clients should use (default: http://LISTEN/, with this host's name for a wildcard address). */
  readonly advertise?: string | undefined;
  readonly redis?: string | undefined;
  /** `--redis-cluster`: `redis` names seed nodes of a Redis Cluster. */
  readonly redisCluster?: boolean | undefined;
  readonly mirrorsFile?: string | undefined;
  readonly maxInflight?: number | undefined;
  /** Bytes of hot blocks kept in RAM (default 256 MiB; 0 turns the cache off). */
  readonly memoryCacheBytes?: number | undefined;
  /** Default true: one line per request on stdout. */
  readonly accessLog?: boolean | undefined;
  /** Log every upstream fetch (stderr). */
  readonly verbose?: boolean | undefined;
  /** Server tunables (timeouts, limits); tests shorten them. */
  readonly server?: MirrorServerOptions | undefined;
  readonly heartbeatIntervalMs?: number | undefined;
}

/** A started mirror: where it listens, and how to stop it. */
export interface RunningMirror {
  readonly address: ListenAddress;
  /** http://HOST:PORT/ as bound. */
  readonly url: string;
  readonly server: MirrorServer;
  readonly metrics: Metrics;
  /** Unregisters, stops accepting, drains (bounded) and closes. Idempotent. */
  close(): Promise<void>;
}

/** Registers a step to undo when the mirror closes; steps run last-registered first. */
type Defer = (cleanup: () => Promise<void> | void) => void;

/**
 * Builds and starts a mirror: store reader, optional pull-through upstream,
 * server, and (with --redis or --mirrors-file) a registry heartbeat.
 * Resolves once listening; aborting io.signal closes everything.
 */
export async function startMirror(options: ServeOptions, io: CommandIo): Promise<RunningMirror> {
  const logger: Logger = new LineLogger((l) => io.stderr.write(l), !!options.verbose);
  const listen = parseServeListen(options.listen ?? DEFAULT_SERVE_LISTEN);
  // A pull-through mirror may start empty: it fills its store from upstream.
  if (options.upstreams?.length) await mkdir(options.store, { recursive: true }).catch(() => {});
  const store = await StoreReader.open({}, { root: options.store });
  const metrics = new Metrics();
  const lifetime = new AbortController();
  const cleanups: (() => Promise<void> | void)[] = [() => lifetime.abort(), () => store.close()];
  const defer: Defer = (c) => cleanups.push(c);
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  };

  try {
    const parts = { store, metrics, logger };
    const { server, address } = await listenServer(options, io, parts, listen, lifetime.signal, defer);
    const url = `http://${formatListen(address)}/`;
    await joinRegistry(options, io.signal, { store, server, logger }, address, defer);
    const pulling = options.upstreams?.length ? ` (pull-through from ${options.upstreams.join(', ')})` : '';
    logger.info(`serving ${store.root} on ${url}${pulling}`);
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= cleanup();
      return closing;
    };
    io.signal.addEventListener('abort', () => void close(), { once: true });
    return { address, url, server, metrics, close };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** The HTTP side: the pull-through upstream (when given), the caches and the server, listening until `lifetime` aborts. */
async function listenServer(
  options: ServeOptions,
  io: CommandIo,
  { store, metrics, logger }: { store: StoreReader; metrics: Metrics; logger: Logger },
  listen: ListenAddress,
  lifetime: AbortSignal,
  defer: Defer,
): Promise<{ server: MirrorServer; address: ListenAddress }> {
  let pull: PullThrough | undefined;
  if (options.upstreams?.length) {
    const upstream = new Upstream({ logger }, { urls: options.upstreams });
    defer(() => upstream.close());
    pull = new PullThrough({ upstream, store, refs: new RefBook(), metrics, logger }, {}, lifetime);
  }
  const accessLog = options.accessLog === false ? undefined : new AccessLog({ write: (text) => io.stdout.write(text) });
  const memoryBytes = options.memoryCacheBytes ?? DEFAULT_MEMORY_CACHE_BYTES;
  const pool = new BufferPool();
  const memory = memoryBytes > 0 ? new BlockMemoryCache({ pool }, memoryBytes) : undefined;
  const server = new MirrorServer(
    { store, metrics, pull, accessLog, logger, memory, pool },
    { ...options.server, maxInflight: options.maxInflight ?? options.server?.maxInflight },
  );
  // Not io.signal: on Ctrl-C the cleanup unregisters first, then closes the server (draining it).
  const address = await server.listen(listen, lifetime);
  defer(() => server.close());
  return { server, address };
}

/**
 * With --redis or --mirrors-file: opens the registry and starts the heartbeat that tells it this mirror's URL,
 * region, load and store health. Without either, --advertise and --region are a usage error.
 */
async function joinRegistry(
  options: ServeOptions,
  signal: AbortSignal,
  { store, server, logger }: { store: StoreReader; server: MirrorServer; logger: Logger },
  address: ListenAddress,
  defer: Defer,
): Promise<void> {
  if (!options.redis && !options.mirrorsFile) {
    if (options.advertise || options.region) {
      throw new UsageError(
        '--advertise and --region describe this mirror to a registry: give --redis or --mirrors-file',
      );
    }
    return;
  }
  const advertise = normaliseMirrorUrl(options.advertise ?? advertisedUrl(address));
  const region = options.region ?? DEFAULT_REGION;
  const registry: Registry = await openRegistry(
    // A Redis down at start is the heartbeat's to retry: the mirror serves meanwhile, out of DNS until it registers.
    { redis: options.redis, redisCluster: options.redisCluster, mirrorsFile: options.mirrorsFile, waitForRedis: false },
    { logger, signal },
  );
  defer(() => registry.close());
  let healthy = true;
  const check = setInterval(() => {
    void store.healthy().then((ok) => {
      healthy = ok;
    });
  }, HEALTH_CHECK_MS);
  check.unref();
  defer(() => clearInterval(check));
  const heartbeat = await startHeartbeat(
    { registry, logger },
    {
      record: () => {
        const g = server.gauges();
        return {
          id: mirrorIdFromUrl(advertise),
          url: advertise,
          region,
          capacity: g.maxInflight,
          load: g.inflight,
          health: healthy ? 'ok' : 'degraded',
          updated: Date.now(),
        };
      },
      intervalMs: options.heartbeatIntervalMs,
    },
    signal,
  );
  // Unregister first on the way out: the mirror leaves DNS before it stops answering.
  defer(() => heartbeat.stop());
}

export interface ServeSummary {
  readonly url: string;
  readonly requests: number;
  readonly seconds: number;
}

/** `thfc-mirror serve`: runs until io.signal aborts (SIGINT/SIGTERM), then shuts down cleanly. */
export async function runServe(
  options: ServeOptions,
  io: CommandIo,
  hooks: { ready?: () => void } = {},
): Promise<ServeSummary> {
  const started = performance.now();
  io.signal.throwIfAborted(); // a signal while the command loaded: nothing started, nothing to stop
  const mirror = await startMirror(options, io);
  hooks.ready?.();
  if (!io.signal.aborted) {
    await new Promise<void>((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await mirror.close();
  return { url: mirror.url, requests: mirror.metrics.totalRequests(), seconds: (performance.now() - started) / 1000 };
}

/** What clients are told to use when --advertise is not given: the bound address, or this host's name for 0.0.0.0/::. */
function advertisedUrl(address: ListenAddress): string {
  const wildcard = address.host === '0.0.0.0' || address.host === '::';
  return `http://${formatListen({ host: wildcard ? hostname() : address.host, port: address.port })}/`;
}
