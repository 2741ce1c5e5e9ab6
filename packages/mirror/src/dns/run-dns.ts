import { readFile } from 'node:fs/promises';
import { fsError, UsageError } from '@thfc/format';
import type { Logger } from '@thfc/store';
import { openRegistry } from '../registry/open-registry.js';
import type { Registry } from '../registry/registry.js';
import { DnsServer } from './dns-server.js';
import { type Networks, NO_NETWORKS, parseAddress, parseNetworks } from './networks.js';
import { RegistrySnapshot } from './registry-snapshot.js';
import { answerQuery, DEFAULT_DNS_TTL_SECONDS, normaliseZone, type ZoneConfig } from './zone.js';

/**
 * 127.0.0.1:5353: loopback, so a test or a first try exposes nothing, and an
 * unprivileged port (53 needs root or CAP_NET_BIND_SERVICE and is usually
 * taken by the system resolver).
 */
export const DEFAULT_DNS_LISTEN = '127.0.0.1:5353';

export interface RunDnsOptions {
  readonly zone: string;
  /** HOST:PORT or [IPv6]:PORT; port 0 picks a free one. */
  readonly listen?: string;
  readonly redis?: string;
  /** `--redis-cluster`: `redis` names seed nodes of a Redis Cluster. */
  readonly redisCluster?: boolean;
  readonly mirrorsFile?: string;
  readonly networksFile?: string;
  readonly ttlSeconds?: number;
  /** How often the registry is re-read (registry-snapshot.ts). */
  readonly refreshMs?: number;
}

export interface RunDnsIo {
  readonly signal: AbortSignal;
  readonly logger?: Pick<Logger, 'info' | 'fault'>;
}

/**
 * `thfc-mirror dns`: DNS-Balance for one pool. Opens the registry, reads the
 * networks file, and answers on UDP and TCP until `close()` or abort.
 * Resolves once listening. Start-up errors are typed: UsageError (bad zone,
 * listen address or file contents, with the line), InputError (a file is
 * missing), MirrorUnavailableError (Redis does not answer, the port is taken).
 */
export async function runDns(
  options: RunDnsOptions,
  io: RunDnsIo,
): Promise<{ address: { host: string; port: number }; close(): Promise<void> }> {
  const { signal, logger } = io;
  const zone = normaliseZone(options.zone);
  const { host, port } = parseListenAddress(options.listen ?? DEFAULT_DNS_LISTEN);
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_DNS_TTL_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > 86_400) {
    throw new UsageError(`--ttl must be a whole number of seconds from 0 to 86400, not ${ttlSeconds}`);
  }
  const networks = options.networksFile ? await readNetworks(options.networksFile, signal) : NO_NETWORKS;

  const registry: Registry = await openRegistry(
    { redis: options.redis, redisCluster: options.redisCluster, mirrorsFile: options.mirrorsFile },
    { logger, signal },
  );
  const snapshot = new RegistrySnapshot({ registry, logger }, { refreshMs: options.refreshMs });
  let server: DnsServer | undefined;
  const close = async () => {
    await server?.close();
    await snapshot.stop();
    await registry.close();
  };
  try {
    await snapshot.start(signal);
    const config: ZoneConfig = { zone, networks, ttlSeconds, serverAddress: host };
    // An answer depends on the snapshot and, through the SOA serial, on the second: a new epoch for either.
    let epoch = { records: snapshot.records, second: -1 };
    const answerEpoch = () => {
      const second = Math.floor(Date.now() / 1000);
      if (epoch.records !== snapshot.records || epoch.second !== second) epoch = { records: snapshot.records, second };
      return epoch;
    };
    server = new DnsServer(
      {
        answer: (question, client) => answerQuery(config, snapshot.records, question, client.address, Date.now()),
        answerEpoch,
        logger,
      },
      { host, port },
    );
    const address = await server.listen(signal);
    logger?.info(
      `dns-balance for ${zone} on ${formatHostPort(address)} (UDP and TCP), mirrors from ${registry}, ` +
        `${networks.rules.length} network rule(s)${networks.defaultRegions.length ? ' and a default' : ''}, ` +
        `${snapshot.records.length} live mirror(s)`,
    );
    let closing: Promise<void> | undefined;
    const closeOnce = () => {
      closing ??= close().then(() => logger?.info(`dns-balance for ${zone} stopped`));
      return closing;
    };
    signal.addEventListener('abort', () => void closeOnce(), { once: true });
    return { address, close: closeOnce };
  } catch (e) {
    await close();
    throw e;
  }
}

/** `HOST:PORT`, `[IPv6]:PORT`, or a bare IP (port 53). */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const host = m ? (m[1] as string) : text.replace(/^\[(.*)\]$/, '$1');
  const port = m ? Number(m[2]) : 53;
  if (!parseAddress(host) || !Number.isInteger(port) || port > 65535) {
    throw new UsageError(`bad --listen "${text}": expected IP:PORT or [IPv6]:PORT, e.g. ${DEFAULT_DNS_LISTEN}`);
  }
  return { host, port };
}

function formatHostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

async function readNetworks(file: string, signal: AbortSignal): Promise<Networks> {
  let text: string;
  try {
    text = await readFile(file, { encoding: 'utf8', signal });
  } catch (e) {
    signal.throwIfAborted();
    throw fsError(e, file);
  }
  return parseNetworks(text, file);
}
