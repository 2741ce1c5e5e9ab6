import type { SrvRecord } from 'node:dns';
import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { MirrorUnavailableError, UsageError } from '@thfc/format';

/**
 * Finding a pool's mirrors through DNS (`httpstorged --pool ZONE`), as
 * DNS-Balance publishes them (docs/dns-balance.md). The rules, in order:
 *
 * 1. SRV `_thfc._tcp.ZONE`: records sorted by priority, then weight (higher
 *    first); each gives `http://TARGET:PORT/`. A target inside ZONE is
 *    resolved (A, then AAAA) through the same DNS server, because the system
 *    resolver that the HTTP client uses may not know it; a target outside
 *    ZONE stays a host name for the system resolver.
 * 2. Else TXT at ZONE: every string of every record that is an http(s) URL,
 *    in order (DNS-Balance sends one record whose strings are the URLs).
 * 3. Else A and AAAA at ZONE: `http://ADDRESS:PORT/` with `defaultPort`.
 *
 * Duplicates are dropped and at most MAX_DISCOVERED_MIRRORS kept. The TTL is
 * the smallest A/AAAA TTL seen (node's resolver reports no SRV or TXT TTL;
 * DNS-Balance gives all its records one TTL), clamped to [1 s, 5 min], or
 * DEFAULT_UNKNOWN_TTL_SECONDS when no answer carried one.
 */

/** Port for rule 3: an A record says nothing about ports, and plain web servers serve HTTP on 80. */
export const DEFAULT_MIRROR_PORT = 80;
/**
 * Per-query timeout. A DNS server on the LAN answers in milliseconds; c-ares
 * tries twice, so an unreachable server fails discovery in about 2 × 1 s.
 */
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 1_000;
/** Re-resolve after 10 s when no answer carried a TTL: a fleet change reaches the client soon, at 4 queries per 10 s. */
export const DEFAULT_UNKNOWN_TTL_SECONDS = 10;
/** At least 1 s between resolutions (a TTL of 0 must not become a busy loop), at most 5 min (a huge TTL must not freeze the list). */
export const MIN_TTL_SECONDS = 1;
export const MAX_TTL_SECONDS = 300;
/** A client tries mirrors in order; 16 is more than failover ever reaches and bounds the target lookups. */
export const MAX_DISCOVERED_MIRRORS = 16;

export interface DiscoverOptions {
  /** The DNS server as HOST:PORT, [IPv6]:PORT or HOST (port 53); default: the system's resolvers. */
  readonly dns?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly defaultPort?: number | undefined;
  readonly timeoutMs?: number | undefined;
}

export interface DiscoveredMirrors {
  /** Mirror base URLs in the pool's order, each ending in `/`. */
  readonly urls: string[];
  readonly ttlSeconds: number;
  /** Which rule gave them. */
  readonly via: 'SRV' | 'TXT' | 'A';
}

/**
 * The DNS server answered REFUSED: it is up, but does not serve that zone
 * (a wrong --pool, or --dns naming another zone's server). Still "could not
 * answer" to the failover, but the message must not say "unavailable".
 */
export class PoolNotServedError extends MirrorUnavailableError {
  constructor(
    source: string,
    readonly pool: string,
  ) {
    super(source, `pool ${pool}: EREFUSED`);
    this.message = `${source} does not serve pool ${pool} (it answered REFUSED); check the --pool name, or give --dns a server of that zone`;
  }
}

/** Codes c-ares uses for "the name or the record type does not exist": an empty answer, not a failure. */
const EMPTY = new Set(['ENODATA', 'ENOTFOUND']);

export async function discoverMirrors(pool: string, options: DiscoverOptions = {}): Promise<DiscoveredMirrors> {
  const zone = poolZone(pool);
  const { signal } = options;
  signal?.throwIfAborted();
  const resolver = new Resolver({ timeout: options.timeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS, tries: 2 });
  const server = options.dns ? await dnsServer(options.dns, signal) : undefined;
  if (server) resolver.setServers([server]);
  const where = server ? `dns ${server}` : 'dns (system resolvers)';
  const onAbort = () => resolver.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const [srv, txt, a, aaaa] = await Promise.allSettled([
      resolver.resolveSrv(`_thfc._tcp.${zone}`),
      resolver.resolveTxt(zone),
      resolver.resolve4(zone, { ttl: true }),
      resolver.resolve6(zone, { ttl: true }),
    ]);
    signal?.throwIfAborted();
    const ttls: number[] = [];
    for (const r of [a, aaaa]) if (r.status === 'fulfilled') for (const x of r.value) ttls.push(x.ttl);
    const failures = [srv, txt, a, aaaa].flatMap((r) =>
      r.status === 'rejected' && !EMPTY.has((r.reason as { code?: string }).code ?? '') ? [r.reason as Error] : [],
    );
    const defaultPort = options.defaultPort ?? DEFAULT_MIRROR_PORT;
    const done = (urls: string[], via: DiscoveredMirrors['via']): DiscoveredMirrors => ({
      urls: [...new Set(urls)].slice(0, MAX_DISCOVERED_MIRRORS),
      ttlSeconds: clampTtl(ttls),
      via,
    });

    if (srv.status === 'fulfilled' && srv.value.length > 0) {
      const urls = await srvUrls(resolver, zone, srv.value, ttls);
      signal?.throwIfAborted();
      if (urls.length) return done(urls, 'SRV');
    }
    if (txt.status === 'fulfilled') {
      const urls = txt.value.flat().flatMap((s) => httpUrl(s) ?? []);
      if (urls.length) return done(urls, 'TXT');
    }
    const addresses = [a, aaaa].flatMap((r) => (r.status === 'fulfilled' ? r.value.map((x) => x.address) : []));
    if (addresses.length)
      return done(
        addresses.map((ip) => urlFor(ip, defaultPort)),
        'A',
      );

    throw noMirrors(where, zone, failures);
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The pool's zone name, canonical (lower case, no trailing dot); a UsageError for what is no DNS name. */
function poolZone(pool: string): string {
  const zone = pool.trim().replace(/\.$/, '').toLowerCase();
  if (!/^[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?$/.test(zone) || zone.includes('..')) {
    throw new UsageError(`bad --pool "${pool}": expected a DNS name such as pool.example.org`);
  }
  return zone;
}

/** Why no rule gave a mirror: the server refused the zone, the queries failed (their codes), or the pool is empty. */
function noMirrors(where: string, zone: string, failures: readonly Error[]): MirrorUnavailableError {
  if (failures.some((e) => (e as { code?: string }).code === 'EREFUSED')) return new PoolNotServedError(where, zone);
  if (failures.length) {
    return new MirrorUnavailableError(
      where,
      `pool ${zone}: ${[...new Set(failures.map((e) => (e as { code?: string }).code ?? e.message))].join(', ')}`,
    );
  }
  return new MirrorUnavailableError(where, `pool ${zone} has no live mirrors (no SRV, TXT, A or AAAA records)`);
}

/**
 * The URLs of SRV records, best first: an in-zone target is looked up (A and AAAA, their TTLs pushed onto
 * `ttls`), any other target is used as it is.
 */
async function srvUrls(
  resolver: Resolver,
  zone: string,
  records: readonly SrvRecord[],
  ttls: number[],
): Promise<string[]> {
  // Array.prototype.sort is stable: equal priority and weight keep the server's order.
  const ordered = [...records]
    .sort((x, y) => x.priority - y.priority || y.weight - x.weight)
    .slice(0, MAX_DISCOVERED_MIRRORS);
  const hosts = await Promise.all(
    ordered.map(async (r) => {
      const target = r.name.replace(/\.$/, '').toLowerCase();
      if (isIP(target)) return [urlFor(target, r.port)];
      if (target !== zone && !target.endsWith(`.${zone}`)) return [urlFor(target, r.port)];
      const found = await Promise.allSettled([
        resolver.resolve4(target, { ttl: true }),
        resolver.resolve6(target, { ttl: true }),
      ]);
      return found.flatMap((f) => {
        if (f.status !== 'fulfilled') return [];
        for (const x of f.value) ttls.push(x.ttl);
        return f.value.map((x) => urlFor(x.address, r.port));
      });
    }),
  );
  return hosts.flat();
}

/** `--dns` as the resolver wants it: IP:PORT; a host name is looked up once with the system resolver. */
async function dnsServer(spec: string, signal: AbortSignal | undefined): Promise<string> {
  if (isIP(spec)) return isIP(spec) === 6 ? `[${spec}]:53` : `${spec}:53`;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(spec);
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (!m?.[1] || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`bad --dns "${spec}": expected HOST:PORT, [IPv6]:PORT or HOST`);
  }
  let host = m[1];
  if (!isIP(host)) {
    try {
      host = (await lookup(host)).address;
    } catch (e) {
      signal?.throwIfAborted();
      throw new MirrorUnavailableError(`dns ${spec}`, `cannot resolve ${host}: ${(e as { code?: string }).code ?? e}`);
    }
  }
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function urlFor(host: string, port: number): string {
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return `http://${h}:${port}/`;
}

/** An http(s) URL with a host, as a base ending in `/`; undefined for anything else. */
function httpUrl(text: string): string | undefined {
  try {
    const u = new URL(text);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) return undefined;
    u.hash = '';
    u.search = '';
    if (!u.pathname.endsWith('/')) u.pathname = `${u.pathname}/`;
    return u.href;
  } catch {
    return undefined;
  }
}

function clampTtl(ttls: readonly number[]): number {
  if (ttls.length === 0) return DEFAULT_UNKNOWN_TTL_SECONDS;
  return Math.min(MAX_TTL_SECONDS, Math.max(MIN_TTL_SECONDS, Math.min(...ttls)));
}
