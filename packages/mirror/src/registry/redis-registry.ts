import { InvalidArgumentError, MirrorUnavailableError } from '@thfc/format';
import type { Logger } from '@thfc/store';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { decodeMirrorRecord, encodeMirrorRecord } from './mirror-record.js';
import { parseRedisUrl, type RedisTarget, redacted } from './redis-url.js';
import type { MirrorRecord, Registry } from './registry.js';

/**
 * The fleet registry in Redis, and the only importer of ioredis: one server,
 * a Redis Cluster, or the master a set of Sentinels names (redis-url.ts).
 *
 * Layout (docs/dns-balance.md):
 * - `{thfc}:mirror:<id>`: the record as JSON, written with `SET … PX ttl`, so a
 *   mirror that stops heartbeating disappears on its own;
 * - `{thfc}:mirrors`: a set of ids, so listing reads only our keys instead of
 *   SCANning a Redis that may be shared. Ids whose record has expired are
 *   pruned by the listing script itself, atomically.
 * The `{thfc}` hash tag puts every key in one cluster slot, so the
 * transactions and the listing script, which touch several keys, run on one
 * node of a cluster as they do on a single server.
 *
 * Failures: every command fails fast while disconnected (no offline queue)
 * and after `commandTimeoutMs`, as MirrorUnavailableError; the connection
 * itself is re-established in the background with capped backoff, so a
 * heartbeat or DNS refresh simply succeeds again on its next tick once Redis
 * is back.
 */

/**
 * Key namespace, a hash tag (see above). One Redis can hold several fleets by
 * using different databases (`redis://host/2`); a cluster has only one.
 */
export const REDIS_KEY_PREFIX = '{thfc}:';

/**
 * 3 s to connect at start: a local or LAN Redis answers in milliseconds, and a
 * daemon told to use a Redis that is not there should say so promptly rather
 * than hang its start-up.
 */
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 3_000;

/**
 * 2 s per command: a heartbeat runs every 2 s and a DNS refresh every 0.5 s;
 * a command slower than that is useless to both, and the next tick retries.
 */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2_000;

/** Reconnect backoff: 100 ms doubling to 2 s, forever (the daemon outlives a Redis restart). */
const RECONNECT_START_MS = 100;
const RECONNECT_MAX_MS = 2_000;

/** Returns the JSON of every live record and prunes ids whose record has expired. */
const LIST_SCRIPT = `
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then table.insert(out, v) else redis.call('SREM', KEYS[1], id) end
end
return out
`;

export interface RedisRegistryOptions {
  /** `redis://[:password@]host[:port][/db]`, `redis+cluster://…` or `redis+sentinel://…` (redis-url.ts). */
  readonly url: string;
  /** `--redis-cluster`: the `redis://` URL names seed nodes of a cluster. */
  readonly cluster?: boolean | undefined;
  readonly connectTimeoutMs?: number;
  readonly commandTimeoutMs?: number;
}

export class RedisRegistry implements Registry {
  private readonly redis: Redis | Cluster;
  private readonly logger: Pick<Logger, 'fault'> | undefined;
  private readonly where: string;
  private lastError: string | undefined;
  /** Connections made so far: a new one may reach a Redis that restarted empty (Registry.epoch). */
  private connections = 0;
  /**
   * The last listing's records by their JSON: an unchanged record is not
   * decoded again, and stays the same object, so what DNS-Balance works out
   * per record (zone.ts) is kept. A fleet of 1,000 costs ~3 ms to decode,
   * every 0.5 s, on the thread that answers queries.
   */
  private decoded = new Map<string, MirrorRecord>();

  private constructor(components: { logger?: Pick<Logger, 'fault'> }, options: RedisRegistryOptions) {
    this.logger = components.logger;
    this.where = redacted(options.url).replace(/\/$/, '');
    this.redis = client(parseRedisUrl(options.url, { cluster: options.cluster }), options);
    // Without a listener ioredis prints every failed reconnect; keep the reason for our own messages instead.
    this.redis.on('error', (e: Error) => {
      this.lastError = (e as { code?: string }).code ?? e.message;
    });
    this.redis.on('ready', () => {
      this.connections++;
    });
  }

  /** Connects and checks Redis answers (PING); MirrorUnavailableError when it does not. */
  static async connect(
    components: { logger?: Pick<Logger, 'fault'> },
    options: RedisRegistryOptions,
    signal?: AbortSignal,
  ): Promise<RedisRegistry> {
    parseRedisUrl(options.url, { cluster: options.cluster });
    const registry = new RedisRegistry(components, options);
    try {
      await registry.command('connect', () => registry.redis.connect(), signal);
      await registry.command('ping', () => registry.redis.ping(), signal);
    } catch (e) {
      registry.redis.disconnect();
      throw e;
    }
    return registry;
  }

  /**
   * Connects like connect(), but a Redis that does not answer is not an
   * error: for a daemon that must run while Redis is down (`serve`: its
   * heartbeat retries every beat, and registers once Redis answers). Until
   * then every command fails fast, as after a lost connection; the client
   * keeps reconnecting with the same backoff.
   */
  static async open(
    components: { logger?: Pick<Logger, 'fault'> },
    options: RedisRegistryOptions,
    signal?: AbortSignal,
  ): Promise<RedisRegistry> {
    parseRedisUrl(options.url, { cluster: options.cluster });
    const registry = new RedisRegistry(components, options);
    try {
      await registry.command('connect', () => registry.redis.connect(), signal);
    } catch (e) {
      if (signal?.aborted) {
        registry.redis.disconnect();
        throw e;
      }
      // Not connected yet: the reconnect strategy keeps trying, and the heartbeat says so.
    }
    return registry;
  }

  get epoch(): number {
    return this.connections;
  }

  async register(record: MirrorRecord, ttlMs: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new InvalidArgumentError(`ttlMs must be a whole number > 0`);
    const json = encodeMirrorRecord(record);
    await this.command(
      `register ${record.id}`,
      () =>
        this.redis
          .multi()
          .set(recordKey(record.id), json, 'PX', ttlMs)
          .sadd(setKey(), record.id)
          .exec()
          .then(checkExec),
      signal,
    );
  }

  async unregister(id: string, signal?: AbortSignal): Promise<void> {
    await this.command(
      `unregister ${id}`,
      () => this.redis.multi().del(recordKey(id)).srem(setKey(), id).exec().then(checkExec),
      signal,
    );
  }

  async list(signal?: AbortSignal): Promise<MirrorRecord[]> {
    const values = (await this.command(
      'list',
      () => this.redis.eval(LIST_SCRIPT, 1, setKey(), `${REDIS_KEY_PREFIX}mirror:`),
      signal,
    )) as unknown;
    if (!Array.isArray(values)) throw new MirrorUnavailableError(this.where, 'list: unexpected reply');
    const records: MirrorRecord[] = [];
    const decoded = new Map<string, MirrorRecord>();
    for (const v of values) {
      const json = String(v);
      try {
        const record = this.decoded.get(json) ?? decodeMirrorRecord(json);
        decoded.set(json, record);
        records.push(record);
      } catch (e) {
        // One mirror writing garbage must not take the others out of DNS.
        this.logger?.fault(`${this.where}: ignoring a bad record: ${(e as Error).message}`);
      }
    }
    this.decoded = decoded;
    return records;
  }

  /** QUIT (waits for replies in flight), or a hard disconnect when Redis does not answer. */
  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    try {
      await this.command('quit', () => this.redis.quit());
    } catch {
      // fall through to the hard disconnect
    }
    this.redis.disconnect();
  }

  toString(): string {
    return `redis-registry(${this.where})`;
  }

  /** Runs one Redis call, rejecting at once on abort; every failure becomes MirrorUnavailableError. */
  private async command<T>(what: string, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([call(), aborted]);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (e instanceof InvalidArgumentError || e instanceof MirrorUnavailableError) throw e;
      // ioredis's "Stream isn't writeable and enableOfflineQueue options is false" means: not connected.
      const offline = this.redis.status !== 'ready' && /writeable|Connection is closed/.test((e as Error).message);
      const why = offline ? 'not connected' : (e as Error).message || this.lastError || String(e);
      throw new MirrorUnavailableError(
        this.where,
        `${what}: ${why}${this.lastError && !why.includes(this.lastError) ? ` (${this.lastError})` : ''}`,
        { cause: e },
      );
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }
}

function recordKey(id: string): string {
  return `${REDIS_KEY_PREFIX}mirror:${id}`;
}

function setKey(): string {
  return `${REDIS_KEY_PREFIX}mirrors`;
}

/** MULTI/EXEC reports per-command errors in its reply instead of rejecting. */
function checkExec(replies: [Error | null, unknown][] | null): void {
  if (!replies) throw new Error('transaction aborted');
  for (const [e] of replies) if (e) throw e;
}

const reconnectDelay = (times: number) => Math.min(RECONNECT_START_MS * 2 ** Math.min(times, 10), RECONNECT_MAX_MS);

/**
 * The ioredis client for a target. Every kind fails fast while disconnected
 * (no offline queue, one retry) and reconnects in the background; a cluster
 * client also follows MOVED redirections and re-reads the slot map when a
 * master fails over, and a Sentinel client asks the Sentinels for the new
 * master.
 */
function client(target: RedisTarget, options: RedisRegistryOptions): Redis | Cluster {
  const common: RedisOptions = {
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    username: target.username,
    password: target.password,
    ...(target.tls ? { tls: {} } : {}),
  };
  switch (target.kind) {
    case 'single':
      return new Redis({
        ...common,
        host: target.node.host,
        port: target.node.port,
        db: target.db,
        lazyConnect: true,
        enableOfflineQueue: false,
        retryStrategy: reconnectDelay,
      });
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: [...target.sentinels],
        name: target.master,
        db: target.db,
        lazyConnect: true,
        enableOfflineQueue: false,
        sentinelRetryStrategy: reconnectDelay,
        retryStrategy: reconnectDelay,
      });
    case 'cluster':
      return new Cluster([...target.nodes], {
        lazyConnect: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
        slotsRefreshTimeout: common.connectTimeout,
        redisOptions: common,
      });
  }
}
