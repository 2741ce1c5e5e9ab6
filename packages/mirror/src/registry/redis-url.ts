import { InvalidArgumentError } from '@thfc/format';

/** One Redis endpoint. */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

interface RedisCredentials {
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** `rediss…`: TLS to every node. */
  readonly tls: boolean;
}

/**
 * Which Redis a registry URL names, and how to reach it:
 * - `redis://[USER:PASS@]HOST[:PORT][/DB]` (`rediss://` for TLS): one server;
 * - `redis+cluster://HOST:PORT,HOST:PORT…`: a Redis Cluster, reached through
 *   any of these seed nodes (the rest are learnt from the cluster); also
 *   `--redis-cluster` with a `redis://` URL. A cluster has no databases;
 * - `redis+sentinel://HOST:PORT,HOST:PORT…/MASTER[/DB]`: the master that
 *   these Sentinels name MASTER, followed through failovers.
 * Ports default to 6379 (26379 for a Sentinel). Pure: text in, target out.
 */
export type RedisTarget =
  | ({ readonly kind: 'single'; readonly node: RedisNode; readonly db: number } & RedisCredentials)
  | ({ readonly kind: 'cluster'; readonly nodes: readonly RedisNode[] } & RedisCredentials)
  | ({
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisNode[];
      readonly master: string;
      readonly db: number;
    } & RedisCredentials);

const URL_SHAPE = /^(rediss?)(\+cluster|\+sentinel)?:\/\/(?:([^@/]*)@)?([^/?#]*)(?:\/([^?#]*))?$/;
const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/;
const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;
/** Redis's default database count; a higher number is surely a typo. */
const MAX_DB = 15;
const EXPECTED =
  'expected redis://HOST[:PORT][/DB], redis+cluster://HOST:PORT,HOST:PORT… or redis+sentinel://HOST:PORT,…/MASTER[/DB]';

export function parseRedisUrl(url: string, options: { cluster?: boolean } = {}): RedisTarget {
  const bad = (why: string) => new InvalidArgumentError(`bad Redis URL "${redacted(url)}": ${why}`);
  const m = URL_SHAPE.exec(url.trim());
  if (!m) throw bad(EXPECTED);
  const [, scheme, variant, userinfo, hosts = '', path] = m as unknown as (string | undefined)[];
  const kind = variant === '+cluster' || options.cluster ? 'cluster' : variant === '+sentinel' ? 'sentinel' : 'single';
  if (options.cluster && variant === '+sentinel') throw bad('--redis-cluster with a redis+sentinel:// URL');
  const credentials: RedisCredentials = { ...parseUserinfo(userinfo, bad), tls: scheme === 'rediss' };
  const defaultPort = kind === 'sentinel' ? DEFAULT_SENTINEL_PORT : DEFAULT_PORT;
  const nodes = hosts.split(',').map((h) => parseNode(h, defaultPort, bad));
  const segments = (path ?? '').split('/').filter(Boolean);
  const db = (text: string | undefined): number => {
    if (text === undefined) return 0;
    if (!/^\d{1,2}$/.test(text) || Number(text) > MAX_DB) throw bad(`"${text}" is not a database number (0–${MAX_DB})`);
    return Number(text);
  };
  switch (kind) {
    case 'single':
      if (nodes.length > 1)
        throw bad('several hosts: for a cluster use redis+cluster://, for Sentinels redis+sentinel://');
      if (segments.length > 1) throw bad('a path other than /DB');
      return { kind, node: nodes[0] as RedisNode, db: db(segments[0]), ...credentials };
    case 'cluster':
      if (segments.length > 1 || db(segments[0]) !== 0) throw bad('a Redis Cluster has only database 0');
      return { kind, nodes, ...credentials };
    case 'sentinel': {
      const master = segments[0];
      if (!master || segments.length > 2) throw bad('expected redis+sentinel://HOST:PORT,…/MASTER[/DB]');
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(master)) throw bad(`"${master}" is not a master name`);
      return { kind, sentinels: nodes, master, db: db(segments[1]), ...credentials };
    }
  }
}

/** The URL for messages, without its password. */
export function redacted(url: string): string {
  return url.replace(/^([^:]+:\/\/)([^@/]*:)[^@/]*@/, '$1$2***@');
}

function parseUserinfo(
  userinfo: string | undefined,
  bad: (why: string) => Error,
): { username?: string | undefined; password?: string | undefined } {
  if (!userinfo) return {};
  const colon = userinfo.indexOf(':');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad('bad percent-encoding in the user or password');
    }
  };
  if (colon < 0) return { username: decode(userinfo) || undefined };
  return { username: decode(userinfo.slice(0, colon)) || undefined, password: decode(userinfo.slice(colon + 1)) };
}

function parseNode(text: string, defaultPort: number, bad: (why: string) => Error): RedisNode {
  const m = HOST_PORT.exec(text);
  if (!m) throw bad(text ? `"${text}" is not HOST[:PORT]` : 'no host');
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) throw bad(`port ${port} is out of range`);
  return { host: (m[1] ?? m[2]) as string, port };
}
