import { describe, expect, it } from 'vitest';
import { NO_NETWORKS, parseNetworks } from '../../src/dns/networks.js';
import {
  addressLabel,
  answerQuery,
  DEFAULT_DNS_MAX_MIRRORS,
  normaliseZone,
  rankMirrors,
  type ZoneConfig,
  type ZoneRecord,
} from '../../src/dns/zone.js';
import type { MirrorRecord } from '../../src/registry/registry.js';
import { record } from '../registry/registry-contract.js';

const networks = parseNetworks(`
127.0.0.2/32 jp us
127.0.0.3/32 us jp
default us
`);
const config: ZoneConfig = { zone: 'Pool.Test.', networks, ttlSeconds: 5, serverAddress: '127.0.0.1' };
const NOW = 1_700_000_000_000;

const jp1 = record({ id: '127.0.0.1:8081', url: 'http://127.0.0.1:8081/', region: 'jp', load: 10, capacity: 100 });
const jp2 = record({ id: '127.0.0.2:8082', url: 'http://127.0.0.2:8082/', region: 'jp', load: 0, capacity: 100 });
const us1 = record({ id: '127.0.0.3:8083', url: 'http://127.0.0.3:8083/', region: 'us', load: 50, capacity: 100 });
const fleet = [us1, jp1, jp2];

const ask = (name: string, type: string, client = '127.0.0.2', records: readonly MirrorRecord[] = fleet) =>
  answerQuery(config, records, { name, type }, client, NOW);
const data = (rs: readonly ZoneRecord[]) => rs.map((r) => r.data);

describe('rankMirrors', () => {
  it('orders by the client network’s regions, then by badness', () => {
    expect(rankMirrors(fleet, networks, '127.0.0.2').map((m) => m.record.id)).toEqual([
      '127.0.0.2:8082', // jp, idle
      '127.0.0.1:8081', // jp, 10 % loaded
      '127.0.0.3:8083', // us
    ]);
    expect(rankMirrors(fleet, networks, '127.0.0.3').map((m) => m.record.id)).toEqual([
      '127.0.0.3:8083',
      '127.0.0.2:8082',
      '127.0.0.1:8081',
    ]);
  });

  it('regions a client does not list come last; with no networks file badness alone decides', () => {
    const eu = record({ id: 'eu:1', url: 'http://eu:1/', region: 'eu' });
    expect(rankMirrors([eu, ...fleet], networks, '10.9.9.9').map((m) => [m.record.region, m.regionRank])).toEqual([
      ['us', 0],
      ['eu', 1],
      ['jp', 1],
      ['jp', 1],
    ]);
    expect(rankMirrors(fleet, NO_NETWORKS, '127.0.0.2').map((m) => m.badness)).toEqual([0, 500, 2500]);
  });

  it('a degraded mirror in the preferred region still ranks first among regions, last within its own', () => {
    const sick = { ...jp2, health: 'degraded' as const };
    expect(rankMirrors([sick, jp1, us1], networks, '127.0.0.2').map((m) => m.record.id)).toEqual([
      '127.0.0.1:8081',
      '127.0.0.2:8082',
      '127.0.0.3:8083',
    ]);
  });

  it('equal mirrors: each client gets a stable order, and clients are spread over them', () => {
    const same = Array.from({ length: 4 }, (_, i) =>
      record({ id: `10.0.0.${i}:80`, url: `http://10.0.0.${i}/`, region: 'us' }),
    );
    const first = new Set<string>();
    for (let c = 0; c < 64; c++) {
      const client = `192.0.2.${c}`;
      const order = rankMirrors(same, networks, client).map((m) => m.record.id);
      expect(rankMirrors([...same].reverse(), networks, client).map((m) => m.record.id)).toEqual(order);
      first.add(order[0] as string);
    }
    expect(first.size).toBe(4);
  });

  it('with a limit: exactly the first `limit` of the full order, on a large fleet full of ties', () => {
    const regions = ['jp', 'us', 'eu', 'kr', 'de'];
    const big = Array.from({ length: 600 }, (_, i) =>
      record({
        id: `10.0.${i >> 8}.${i & 255}:80`,
        url: `http://10.0.${i >> 8}.${i & 255}/`,
        region: regions[i % regions.length] as string,
        // Few distinct loads: many mirrors tie on region and badness, so the hash decides.
        load: (i * 7) % 4,
        capacity: 4,
        health: i % 13 === 0 ? 'degraded' : 'ok',
      }),
    );
    // Exact duplicates too: equal on every key, the input order stands.
    big.push({ ...(big[5] as MirrorRecord) }, { ...(big[5] as MirrorRecord) });
    for (const client of ['127.0.0.2', '127.0.0.3', '10.9.9.9', '2001:db8::1']) {
      const full = rankMirrors(big, networks, client);
      for (const limit of [0, 1, 16, 100, 601, 602, 1000]) {
        const top = rankMirrors(big, networks, client, limit);
        expect(top, `${client} limit ${limit}`).toEqual(full.slice(0, limit));
        for (let i = 0; i < top.length; i++) expect(top[i]?.record).toBe(full[i]?.record);
      }
    }
  });

  it('does not modify its input', () => {
    const input = [...fleet];
    rankMirrors(input, networks, '127.0.0.2');
    expect(input).toEqual(fleet);
  });
});

describe('answerQuery', () => {
  it('SRV: one per mirror in order, priority = position, weight = 10000 − badness, in-zone targets', () => {
    const r = ask('_thfc._tcp.pool.test', 'SRV');
    expect(r.rcode).toBe('NOERROR');
    expect(r.authoritative).toBe(true);
    expect(data(r.answers)).toEqual([
      { priority: 0, weight: 10000, port: 8082, target: 'm-127-0-0-2.pool.test' },
      { priority: 1, weight: 9500, port: 8081, target: 'm-127-0-0-1.pool.test' },
      { priority: 2, weight: 7500, port: 8083, target: 'm-127-0-0-3.pool.test' },
    ]);
    expect(r.answers.every((a) => a.ttl === 5 && a.name === '_thfc._tcp.pool.test')).toBe(true);
    // The targets' addresses ride along in the additional section.
    expect(r.additionals.map((a) => [a.name, a.type, a.data])).toEqual([
      ['m-127-0-0-2.pool.test', 'A', '127.0.0.2'],
      ['m-127-0-0-1.pool.test', 'A', '127.0.0.1'],
      ['m-127-0-0-3.pool.test', 'A', '127.0.0.3'],
    ]);
  });

  it('the order differs by client address as the networks file says', () => {
    const targets = (client: string) =>
      ask('_thfc._tcp.pool.test', 'SRV', client).answers.map((a) => (a.type === 'SRV' ? a.data.port : 0));
    expect(targets('127.0.0.2')).toEqual([8082, 8081, 8083]);
    expect(targets('127.0.0.3')).toEqual([8083, 8082, 8081]);
  });

  it('A at the zone: the mirrors’ addresses in order; TXT: one record, one string per URL in order', () => {
    expect(data(ask('pool.test', 'A').answers)).toEqual(['127.0.0.2', '127.0.0.1', '127.0.0.3']);
    expect(data(ask('pool.test', 'TXT', '127.0.0.3').answers)).toEqual([
      ['http://127.0.0.3:8083/', 'http://127.0.0.2:8082/', 'http://127.0.0.1:8081/'],
    ]);
  });

  it('host names: A for IPv4 mirrors, AAAA for IPv6 ones', () => {
    const v6 = record({ id: '[2001:db8::7]:80', url: 'http://[2001:db8::7]/', region: 'us' });
    const label = addressLabel('2001:db8::7');
    expect(label).toBe('m6-20010db8000000000000000000000007');
    expect(data(ask(`${label}.pool.test`, 'AAAA', '127.0.0.2', [v6]).answers)).toEqual(['2001:db8::7']);
    expect(data(ask('pool.test', 'AAAA', '127.0.0.2', [v6, jp1]).answers)).toEqual(['2001:db8::7']);
    expect(data(ask('m-127-0-0-1.pool.test', 'A').answers)).toEqual(['127.0.0.1']);
    expect(ask('m-127-0-0-1.pool.test', 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: [] });
  });

  it('a mirror named by host name is an SRV target by that name, with no address here', () => {
    const named = record({ id: 'mirror-jp1:8080', url: 'http://Mirror-JP1:8080/', region: 'jp' });
    const r = ask('_thfc._tcp.pool.test', 'SRV', '127.0.0.2', [named]);
    expect(data(r.answers)).toEqual([{ priority: 0, weight: 10000, port: 8080, target: 'mirror-jp1' }]);
    expect(r.additionals).toEqual([]);
    expect(ask('pool.test', 'A', '127.0.0.2', [named]).answers).toEqual([]);
  });

  it('https mirrors and mirrors under a path appear in TXT only', () => {
    const secure = record({ id: 's:443', url: 'https://s/', region: 'jp' });
    const sub = record({ id: 'p:80', url: 'http://10.0.0.1/thfc/', region: 'jp' });
    expect(ask('_thfc._tcp.pool.test', 'SRV', '127.0.0.2', [secure, sub]).answers).toEqual([]);
    expect(ask('pool.test', 'A', '127.0.0.2', [secure, sub]).answers).toEqual([]);
    expect(data(ask('pool.test', 'TXT', '127.0.0.2', [secure, sub]).answers)[0]).toHaveLength(2);
  });

  it('no live mirror: NODATA with the SOA, not NXDOMAIN', () => {
    for (const [name, type] of [
      ['_thfc._tcp.pool.test', 'SRV'],
      ['pool.test', 'A'],
      ['pool.test', 'TXT'],
    ] as const) {
      const r = ask(name, type, '127.0.0.2', []);
      expect(r).toMatchObject({ rcode: 'NOERROR', answers: [], authoritative: true });
      expect(r.authorities.map((a) => a.type)).toEqual(['SOA']);
    }
  });

  it('names: NXDOMAIN for unknown ones in the zone (and for a stopped mirror’s host), NODATA for empty non-terminals, REFUSED outside', () => {
    expect(ask('nothing.pool.test', 'A')).toMatchObject({ rcode: 'NXDOMAIN', authoritative: true });
    expect(ask('nothing.pool.test', 'A').authorities[0]?.type).toBe('SOA');
    expect(ask('m-127-0-0-3.pool.test', 'A', '127.0.0.2', [jp1, jp2]).rcode).toBe('NXDOMAIN');
    expect(ask('_tcp.pool.test', 'SRV')).toMatchObject({ rcode: 'NOERROR', answers: [] });
    expect(ask('example.org', 'A')).toMatchObject({ rcode: 'REFUSED', authoritative: false, answers: [] });
    expect(ask('xpool.test', 'A').rcode).toBe('REFUSED');
    expect(ask('pool.test', 'MX')).toMatchObject({ rcode: 'NOERROR', answers: [] });
    expect(ask('pool.test', 'UNKNOWN_999')).toMatchObject({ rcode: 'NOERROR', answers: [] });
  });

  it('SOA and NS for the zone; ns.ZONE has this server’s address', () => {
    const soa = ask('pool.test', 'SOA').answers[0];
    expect(soa).toMatchObject({
      type: 'SOA',
      data: { mname: 'ns.pool.test', rname: 'hostmaster.pool.test', serial: NOW / 1000, minimum: 5 },
    });
    const ns = ask('pool.test', 'NS');
    expect(data(ns.answers)).toEqual(['ns.pool.test']);
    expect(data(ns.additionals)).toEqual(['127.0.0.1']);
    expect(data(ask('ns.pool.test', 'A').answers)).toEqual(['127.0.0.1']);
    const wildcard = answerQuery(
      { ...config, serverAddress: '0.0.0.0' },
      fleet,
      { name: 'ns.pool.test', type: 'A' },
      '1.2.3.4',
      NOW,
    );
    expect(wildcard).toMatchObject({ rcode: 'NOERROR', answers: [] });
  });

  it('ANY gives every record of the name', () => {
    expect(ask('pool.test', 'ANY').answers.map((a) => a.type)).toEqual(['SOA', 'NS', 'A', 'A', 'A', 'TXT']);
  });

  it('names match in any case and keep the asker’s spelling', () => {
    const r = ask('_THFC._tcp.POOL.test.', 'srv');
    expect(r.answers).toHaveLength(3);
    expect(r.answers[0]?.name).toBe('_THFC._tcp.POOL.test');
  });

  it('at most DEFAULT_DNS_MAX_MIRRORS mirrors per answer, the best ones', () => {
    const many = Array.from({ length: 40 }, (_, i) =>
      record({ id: `10.0.${i}.1:80`, url: `http://10.0.${i}.1/`, region: 'us', load: i, capacity: 100 }),
    );
    const srv = ask('_thfc._tcp.pool.test', 'SRV', '127.0.0.3', many).answers;
    expect(srv).toHaveLength(DEFAULT_DNS_MAX_MIRRORS);
    expect(srv.at(-1)?.data).toMatchObject({ target: `m-10-0-${DEFAULT_DNS_MAX_MIRRORS - 1}-1.pool.test` });
  });

  it('TTL is configurable, 0 included', () => {
    const r = answerQuery({ ...config, ttlSeconds: 0 }, fleet, { name: 'pool.test', type: 'A' }, '127.0.0.2', NOW);
    expect(r.answers.every((a) => a.ttl === 0)).toBe(true);
  });

  it('zone names are checked', () => {
    expect(normaliseZone('Pool.Example.ORG.')).toBe('pool.example.org');
    expect(() => normaliseZone('')).toThrow(/bad zone name/);
    expect(() => normaliseZone('a..b')).toThrow(/bad zone name/);
    expect(() => normaliseZone('-a.b')).toThrow(/bad zone name/);
  });
});
