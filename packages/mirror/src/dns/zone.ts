import { isIPv4 } from 'node:net';
import { InvalidArgumentError } from '@thfc/format';
import type { MirrorRecord } from '../registry/registry.js';
import { badness, DOWN_BADNESS } from './badness.js';
import { formatAddress, type Networks, parseAddress, preferredRegions } from './networks.js';

/**
 * DNS-Balance's answers, as a pure function of the live mirror records, the
 * networks file, the client's address and the question. No sockets, no
 * clock (the caller passes `now`), no packet format: dns-server.ts turns the
 * result into bytes.
 *
 * Names in the zone (docs/dns-balance.md):
 * - `ZONE`: SOA, NS; A/AAAA: the mirrors' IP addresses in order; TXT: one
 *   record whose strings are the mirrors' URLs in order.
 * - `_thfc._tcp.ZONE`: SRV, one per mirror, `priority` = its position in the
 *   order (0 first) so the order survives resolvers that shuffle records,
 *   `weight` = 10000 − badness.
 * - `m-A-B-C-D.ZONE` / `m6-<32 hex>.ZONE`: A/AAAA of one mirror's IP, the SRV
 *   targets of mirrors whose URL names an IP address.
 * - `ns.ZONE`: the NS target; A/AAAA of this server when it listens on one
 *   specific address.
 * - `_tcp.ZONE` exists (an empty non-terminal: NODATA); any other name in the
 *   zone is NXDOMAIN; names outside it are REFUSED (not a resolver).
 *
 * Only mirrors at the root of a plain `http://HOST[:PORT]/` URL can be
 * described by SRV and A/AAAA (no scheme, no path there); the others appear
 * in TXT only. A mirror URL naming a host rather than an IP is an SRV target
 * by that name and has no A/AAAA here.
 */

export type ZoneRecord = { readonly name: string; readonly ttl: number } & (
  | { readonly type: 'A' | 'AAAA' | 'NS'; readonly data: string }
  | { readonly type: 'SRV'; readonly data: SrvData }
  | { readonly type: 'TXT'; readonly data: readonly string[] }
  | { readonly type: 'SOA'; readonly data: SoaData }
);

export interface SrvData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
}

export interface ZoneResponse {
  readonly rcode: 'NOERROR' | 'NXDOMAIN' | 'REFUSED';
  /** True for every name in the zone; false for REFUSED. */
  readonly authoritative: boolean;
  readonly answers: readonly ZoneRecord[];
  readonly authorities: readonly ZoneRecord[];
  readonly additionals: readonly ZoneRecord[];
}

/**
 * 5 s: the answer changes with every heartbeat's load report and a dead
 * mirror must leave clients' lists soon after it leaves the registry; a
 * client re-resolving every 5 s costs one small UDP exchange.
 */
export const DEFAULT_DNS_TTL_SECONDS = 5;

/**
 * At most 16 mirrors per answer. A client uses the first few (failover tries
 * them in order); 16 SRV records plus their A records fit in about 1 KB, under
 * the 1232-byte EDNS buffer most resolvers offer, and bound the work and the
 * size of any one answer however large the fleet.
 */
export const DEFAULT_DNS_MAX_MIRRORS = 16;

export interface ZoneConfig {
  /** The pool name, e.g. `pool.example.org` (any case; a trailing dot is ignored). */
  readonly zone: string;
  readonly networks: Networks;
  readonly ttlSeconds?: number;
  readonly maxMirrors?: number;
  /** This server's own address, published as `ns.ZONE` when it is one specific IP (not 0.0.0.0 or ::). */
  readonly serverAddress?: string;
}

export interface ZoneQuery {
  readonly name: string;
  /** A record type mnemonic as a packet library spells it: `A`, `SRV`, `ANY`, `UNKNOWN_99`… */
  readonly type: string;
}

/** One mirror in answer order, with why it is there. */
export interface RankedMirror {
  readonly record: MirrorRecord;
  /** Index of its region in the client's preferred regions; the list's length when not listed. */
  readonly regionRank: number;
  readonly badness: number;
}

/**
 * The order for one client: by the rank of the mirror's region among the
 * client network's preferred regions (unlisted regions last), then by
 * badness, then by a hash of (client address, mirror id). The hash spreads
 * clients over equally good mirrors (rendezvous hashing) while each client
 * keeps a stable order between queries. Equal on all three (a hash
 * collision), the input order stands.
 *
 * With `limit`, only the first `limit` are returned, and only the mirrors
 * that can make the cut are looked at: each region's mirrors are kept in
 * badness order per registry snapshot, so the walk goes through the
 * client's regions in its order and stops as soon as the next mirror is
 * worse than the last kept; the tie hash is computed only for those. A DNS
 * answer needs 16 of a fleet of thousands: sorting the whole fleet for every
 * query cost ~0.8 ms at 1,000 mirrors, this walk ~5 µs.
 *
 * Long: one query's walk; the keys, offer() and both loops share this query's
 * region ranks and kept arrays, which pieces would pass as arguments or as an
 * object per query on a path tuned for ~100k queries a second.
 */
export function rankMirrors(
  records: readonly MirrorRecord[],
  networks: Networks,
  clientAddress: string,
  limit = Number.POSITIVE_INFINITY,
): RankedMirror[] {
  const { regions } = preferredRegions(networks, clientAddress);
  const snapshot = prepared(records);
  // Per query, one rank per region the fleet has: unlisted regions rank after every listed one.
  const rankOfRegion = snapshot.regionNames.map((name) => {
    const at = regions.indexOf(name);
    return at < 0 ? regions.length : at;
  });
  const { regionOf, badness: bad } = snapshot;
  const seed = fnv1aStep(FNV_OFFSET, `${clientAddress}|`);
  const key = (i: number) => (rankOfRegion[regionOf[i] as number] as number) * BADNESS_SPAN + (bad[i] as number);
  const tie = (i: number) => fnv1aStep(seed, (records[i] as MirrorRecord).id);
  const ranked = (order: readonly number[]) =>
    order.map((i) => ({
      record: records[i] as MirrorRecord,
      regionRank: rankOfRegion[regionOf[i] as number] as number,
      badness: bad[i] as number,
    }));
  if (limit >= records.length) {
    const keys = records.map((_, i) => key(i));
    const ties = records.map((_, i) => tie(i));
    const order = records.map((_, i) => i);
    order.sort(
      (a, b) => (keys[a] as number) - (keys[b] as number) || (ties[a] as number) - (ties[b] as number) || a - b,
    );
    return ranked(order);
  }
  // The best `size` so far, in order. Candidates of equal key are offered in input order (the lists are
  // sorted by badness, then index), and one goes after every equal one, so earlier inputs win ties.
  const size = Math.max(0, Math.floor(limit));
  // Plain arrays: a few typed arrays per query cost more to allocate than the whole walk.
  const bestIndex: number[] = [];
  const bestKey: number[] = [];
  const bestTie: number[] = [];
  let count = 0;
  /** Offers mirror `i` with key `k`; false once `k` is past the last kept, so no later one of a sorted walk can enter. */
  const offer = (i: number, k: number): boolean => {
    if (count === size && (size === 0 || k > (bestKey[size - 1] as number))) return false;
    const t = tie(i);
    if (count === size && k === bestKey[size - 1] && t >= (bestTie[size - 1] as number)) return true;
    let at = count < size ? count++ : size - 1;
    while (at > 0) {
      const before = bestKey[at - 1] as number;
      if (before < k || (before === k && (bestTie[at - 1] as number) <= t)) break;
      bestIndex[at] = bestIndex[at - 1] as number;
      bestKey[at] = before;
      bestTie[at] = bestTie[at - 1] as number;
      at--;
    }
    bestIndex[at] = i;
    bestKey[at] = k;
    bestTie[at] = t;
    return true;
  };
  // The client's regions, best first: each one's mirrors by badness.
  for (let rank = 0; rank < regions.length; rank++) {
    const region = snapshot.regionIndex.get(regions[rank] as string);
    if (region === undefined) continue;
    const members = snapshot.byRegion[region] as Int32Array;
    for (let m = 0; m < members.length; m++) {
      const i = members[m] as number;
      if (!offer(i, rank * BADNESS_SPAN + (bad[i] as number))) break;
    }
  }
  // Then every other region together, by badness.
  const unlisted = regions.length;
  for (let m = 0; m < snapshot.byBadness.length; m++) {
    const i = snapshot.byBadness[m] as number;
    if (rankOfRegion[regionOf[i] as number] !== unlisted) continue;
    if (!offer(i, unlisted * BADNESS_SPAN + (bad[i] as number))) break;
  }
  return ranked(bestIndex);
}

/** Badness runs 0–10000, so region rank × 10001 + badness orders by rank first, then badness. */
const BADNESS_SPAN = DOWN_BADNESS + 1;

/** What ranking needs of a records array, worked out once per array: a snapshot is read by every query until the next refresh. */
interface PreparedRecords {
  /** Each record's badness. */
  readonly badness: Int32Array;
  /** Each record's region, as an index into regionNames. */
  readonly regionOf: Int32Array;
  readonly regionNames: readonly string[];
  readonly regionIndex: ReadonlyMap<string, number>;
  /** Per region, its records' indexes by badness, then index. */
  readonly byRegion: readonly Int32Array[];
  /** Every record's index by badness, then index. */
  readonly byBadness: Int32Array;
}

const preparedCache = new WeakMap<readonly MirrorRecord[], PreparedRecords>();

function prepared(records: readonly MirrorRecord[]): PreparedRecords {
  let out = preparedCache.get(records);
  if (!out) {
    const regionIndex = new Map<string, number>();
    const regionOf = Int32Array.from(records, (r) => {
      let at = regionIndex.get(r.region);
      if (at === undefined) {
        at = regionIndex.size;
        regionIndex.set(r.region, at);
      }
      return at;
    });
    const bad = Int32Array.from(records, (r) => badness(r));
    const byBadness = Int32Array.from(records, (_, i) => i).sort(
      (a, b) => (bad[a] as number) - (bad[b] as number) || a - b,
    );
    const members: number[][] = Array.from({ length: regionIndex.size }, () => []);
    for (const i of byBadness) (members[regionOf[i] as number] as number[]).push(i);
    out = {
      badness: bad,
      regionOf,
      regionNames: [...regionIndex.keys()],
      regionIndex,
      byRegion: members.map((m) => Int32Array.from(m)),
      byBadness,
    };
    preparedCache.set(records, out);
  }
  return out;
}

/** The zone's canonical name: lower case, no trailing dot, every label valid. */
export function normaliseZone(zone: string): string {
  const z = zone.trim().replace(/\.$/, '').toLowerCase();
  if (!z || z.length > 200 || !z.split('.').every((l) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) {
    throw new InvalidArgumentError(`bad zone name "${zone}": expected a DNS name such as pool.example.org`);
  }
  return z;
}

/** The host label under ZONE for a mirror IP: `m-127-0-0-1`, `m6-<32 hex digits>`. */
export function addressLabel(ip: string): string | undefined {
  const a = parseAddress(ip);
  if (!a) return undefined;
  if (a.family === 4) return `m-${formatAddress(4, a.value).replaceAll('.', '-')}`;
  return `m6-${a.value.toString(16).padStart(32, '0')}`;
}

/** Answers one question. Pure: the same inputs give the same response. */
export function answerQuery(
  config: ZoneConfig,
  records: readonly MirrorRecord[],
  query: ZoneQuery,
  clientAddress: string,
  now: number,
): ZoneResponse {
  const zone = normaliseZone(config.zone);
  const ttl = config.ttlSeconds ?? DEFAULT_DNS_TTL_SECONDS;
  const qname = query.name.replace(/\.$/, '');
  const lower = qname.toLowerCase();
  if (lower !== zone && !lower.endsWith(`.${zone}`)) return REFUSED;

  const soa = soaRecord(zone, ttl, now);
  const ranked = rankMirrors(records, config.networks, clientAddress, config.maxMirrors ?? DEFAULT_DNS_MAX_MIRRORS);
  const plain = rankedTargets(ranked, zone);
  const ns = `ns.${zone}`;
  const srvName = `_thfc._tcp.${zone}`;
  // An IP mirror's SRV target is its address's own name in the zone.
  const hostIps = new Map<string, string>();
  for (const m of plain) if (m.ip && !hostIps.has(m.target)) hostIps.set(m.target, m.ip);

  /** Every record at one name in the zone, or undefined for a name that does not exist; built only when asked. */
  const recordsAt = (name: string): ZoneRecord[] | undefined => {
    if (name === zone) {
      const out: ZoneRecord[] = [soa, { name: zone, type: 'NS', ttl, data: ns }];
      for (const ip of new Set(hostIps.values())) out.push(hostRecord(zone, ip, ttl));
      const urls = ranked.map((m) => m.record.url).filter((u) => Buffer.byteLength(u) <= 255);
      if (urls.length) out.push({ name: zone, type: 'TXT', ttl, data: urls });
      return out;
    }
    if (name === srvName) {
      return plain.map((m, i) => ({
        name: srvName,
        type: 'SRV',
        ttl,
        data: { priority: i, weight: 10_000 - m.badness, port: m.port, target: m.target },
      }));
    }
    if (name === `_tcp.${zone}`) return [];
    if (name === ns) {
      const server = config.serverAddress && isSpecificAddress(config.serverAddress) ? config.serverAddress : undefined;
      return server ? [hostRecord(ns, server, ttl)] : [];
    }
    const ip = hostIps.get(name);
    return ip ? [hostRecord(name, ip, ttl)] : undefined;
  };

  const atName = recordsAt(lower);
  if (!atName) return { rcode: 'NXDOMAIN', authoritative: true, answers: [], authorities: [soa], additionals: [] };
  const type = query.type.toUpperCase();
  const matching: ZoneRecord[] = [];
  for (const r of atName) if (type === 'ANY' || r.type === type) matching.push({ ...r, name: qname });
  if (matching.length === 0) {
    return { rcode: 'NOERROR', authoritative: true, answers: [], authorities: [soa], additionals: [] };
  }
  const additionals = additionalsFor(matching, lower, recordsAt);
  return { rcode: 'NOERROR', authoritative: true, answers: matching, authorities: [], additionals };
}

/** The answer to a name outside the zone: one object for every such query. */
const REFUSED: ZoneResponse = Object.freeze({
  rcode: 'REFUSED',
  authoritative: false,
  answers: Object.freeze([]),
  authorities: Object.freeze([]),
  additionals: Object.freeze([]),
});

/** The ranked mirrors that have an SRV target in the zone, in rank order. */
function rankedTargets(
  ranked: readonly RankedMirror[],
  zone: string,
): { badness: number; target: string; port: number; ip: string | undefined }[] {
  const plain: { badness: number; target: string; port: number; ip: string | undefined }[] = [];
  for (const m of ranked) {
    const t = srvTargetOf(m.record, zone);
    if (t) plain.push({ badness: m.badness, target: t.target, port: t.port, ip: t.ip });
  }
  return plain;
}

/** An address record (A or AAAA, by the address) at `name`. */
function hostRecord(name: string, ip: string, ttl: number): ZoneRecord {
  return { name, type: isIPv4(ip) ? 'A' : 'AAAA', ttl, data: ip };
}

/** The zone's SOA record. */
function soaRecord(zone: string, ttl: number, now: number): ZoneRecord {
  return {
    name: zone,
    type: 'SOA',
    ttl,
    data: {
      mname: `ns.${zone}`,
      rname: `hostmaster.${zone}`,
      // Seconds since the epoch: it only ever grows, and nothing transfers this zone.
      serial: Math.floor(now / 1000) >>> 0,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      // Negative answers are cached as briefly as positive ones: a mirror that comes up is seen within one TTL.
      minimum: ttl,
    },
  };
}

/** Addresses of in-zone targets, so a resolver need not ask again (RFC 2782, RFC 1035 §3.3.11). */
function additionalsFor(
  matching: readonly ZoneRecord[],
  askedName: string,
  recordsAt: (name: string) => ZoneRecord[] | undefined,
): ZoneRecord[] {
  const additionals: ZoneRecord[] = [];
  const added = new Set<string>();
  for (const r of matching) {
    const target = r.type === 'SRV' ? r.data.target : r.type === 'NS' ? r.data : undefined;
    if (!target || target === askedName || added.has(target)) continue;
    added.add(target);
    for (const a of recordsAt(target) ?? []) if (a.type === 'A' || a.type === 'AAAA') additionals.push(a);
  }
  return additionals;
}

type SrvTarget = { target: string; port: number; ip: string | undefined } | undefined;

const srvTargets = new WeakMap<MirrorRecord, { zone: string; target: SrvTarget }>();

/** srvTarget of a record's URL, once per record object: a snapshot's records are answered from many times. */
function srvTargetOf(record: MirrorRecord, zone: string): SrvTarget {
  const known = srvTargets.get(record);
  if (known?.zone === zone) return known.target;
  const target = srvTarget(record.url, zone);
  srvTargets.set(record, { zone, target });
  return target;
}

/** SRV target, port and IP for a mirror at the root of a plain http URL; undefined for the rest. */
function srvTarget(url: string, zone: string): { target: string; port: number; ip: string | undefined } | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' || u.pathname !== '/' || u.search) return undefined;
  const port = u.port ? Number(u.port) : 80;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const address = parseAddress(host);
  if (address) {
    // Canonical text (IPv4-mapped IPv6 as dotted IPv4), as a client would dial it.
    const ip = formatAddress(address.family, address.value);
    return { target: `${addressLabel(ip)}.${zone}`, port, ip };
  }
  const name = host.replace(/\.$/, '').toLowerCase();
  if (!name.split('.').every((l) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) return undefined;
  return { target: name, port, ip: undefined };
}

function isSpecificAddress(ip: string): boolean {
  const a = parseAddress(ip);
  return !!a && a.value !== 0n;
}

const FNV_OFFSET = 0x811c9dc5;

/**
 * 32-bit FNV-1a, continued from `h` over `text`: a cheap, stable, well-spread
 * hash for tie-breaking (not security). Continuing lets a query hash its
 * client address once and each mirror id after it.
 */
function fnv1aStep(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
