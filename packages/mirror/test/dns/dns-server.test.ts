import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer, MAX_UDP_PAYLOAD } from '../../src/dns/dns-server.js';
import type { ZoneRecord, ZoneResponse } from '../../src/dns/zone.js';
import { dig, digAnswers, digHeader } from './dig.js';

/**
 * The wire layer against real clients: dig, node's resolver (c-ares), and raw
 * sockets for what no polite client sends. The zone is a fake: a Map from
 * `name type` to records, plus a hook.
 */
const records = new Map<string, ZoneRecord[]>();
let hook: ((q: { name: string; type: string }) => void) | undefined;
const seenClients: string[] = [];

function answer(q: { name: string; type: string }, client: { address: string }): ZoneResponse {
  hook?.(q);
  seenClients.push(client.address);
  const found = records.get(`${q.name.toLowerCase()} ${q.type}`);
  if (!found) return { rcode: 'NXDOMAIN', authoritative: true, answers: [], authorities: [], additionals: [] };
  return { rcode: 'NOERROR', authoritative: true, answers: found, authorities: [], additionals: [] };
}

const a = (name: string, ip: string): ZoneRecord => ({ name, type: 'A', ttl: 5, data: ip });
let server: DnsServer | undefined;
let address: { host: string; port: number };

async function start(options: { tcpIdleMs?: number; maxTcpConnections?: number } = {}) {
  server = new DnsServer({ answer }, { host: '127.0.0.1', port: 0, ...options });
  address = await server.listen();
  return server;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
  records.clear();
  hook = undefined;
  seenClients.length = 0;
});

/** A raw query: header (id, flags, counts) + one question, built by hand so tests need no packet library. */
function rawQuery(
  name: string,
  type: number,
  options: { id?: number; flags?: number; qdcount?: number; qclass?: number } = {},
) {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(options.id ?? 0x1234, 0);
  header.writeUInt16BE(options.flags ?? 0x0100, 2);
  header.writeUInt16BE(options.qdcount ?? 1, 4);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(options.qclass ?? 1, 2);
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

async function udpExchange(packet: Buffer, waitMs = 500): Promise<Buffer | undefined> {
  const socket = dgram.createSocket('udp4');
  try {
    const reply = new Promise<Buffer>((r) => socket.once('message', (m) => r(m)));
    socket.send(packet, address.port, address.host);
    return await Promise.race([reply, sleep(waitMs).then(() => undefined)]);
  } finally {
    socket.close();
  }
}

function resolver(): Resolver {
  const r = new Resolver({ timeout: 1_000, tries: 1 });
  r.setServers([`${address.host}:${address.port}`]);
  return r;
}

describe('DnsServer', () => {
  it('answers node’s resolver over UDP, and reports the client address to the zone', async () => {
    await start();
    records.set('pool.test A', [a('pool.test', '127.0.0.2'), a('pool.test', '127.0.0.3')]);
    records.set('pool.test TXT', [{ name: 'pool.test', type: 'TXT', ttl: 5, data: ['http://a/', 'http://b/'] }]);
    records.set('_thfc._tcp.pool.test SRV', [
      {
        name: '_thfc._tcp.pool.test',
        type: 'SRV',
        ttl: 5,
        data: { priority: 0, weight: 9, port: 80, target: 'a.pool.test' },
      },
    ]);
    const r = resolver();
    expect(await r.resolve4('pool.test', { ttl: true })).toEqual([
      { address: '127.0.0.2', ttl: 5 },
      { address: '127.0.0.3', ttl: 5 },
    ]);
    expect(await r.resolveTxt('pool.test')).toEqual([['http://a/', 'http://b/']]);
    expect(await r.resolveSrv('_thfc._tcp.pool.test')).toEqual([
      { name: 'a.pool.test', port: 80, priority: 0, weight: 9 },
    ]);
    await expect(r.resolve4('nothing.pool.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(seenClients.every((c) => c === '127.0.0.1')).toBe(true);
  });

  it('dig over UDP and TCP, from a chosen source address', async () => {
    await start();
    records.set('pool.test A', [a('pool.test', '127.0.0.9')]);
    for (const transport of ['+notcp', '+tcp']) {
      const out = await dig(address, [transport, 'pool.test', 'A'], { source: '127.0.0.3' });
      expect(out.code, out.stderr).toBe(0);
      expect(digHeader(out.stdout)).toEqual({ status: 'NOERROR', flags: ['qr', 'aa', 'rd'] });
      expect(digAnswers(out.stdout)).toEqual([['pool.test.', 5, 'A', '127.0.0.9']]);
    }
    expect(seenClients).toEqual(['127.0.0.3', '127.0.0.3']);
    const nx = await dig(address, ['nothing.pool.test', 'A']);
    expect(digHeader(nx.stdout).status).toBe('NXDOMAIN');
  });

  it('UDP answers over 512 bytes without EDNS: additionals dropped, then TC set; dig retries over TCP and gets them all', async () => {
    await start();
    const many = Array.from({ length: 60 }, (_, i) => a('big.pool.test', `10.0.0.${i}`));
    records.set('big.pool.test A', many);
    const truncated = await dig(address, ['+noedns', '+ignore', 'big.pool.test', 'A']);
    expect(digHeader(truncated.stdout).flags).toContain('tc');
    const reply = await udpExchange(rawQuery('big.pool.test', 1));
    expect(reply?.length).toBeLessThanOrEqual(512);
    const full = await dig(address, ['+noedns', 'big.pool.test', 'A']);
    expect(full.stdout).toMatch(/Truncated, retrying in TCP mode/);
    expect(digAnswers(full.stdout)).toHaveLength(60);
    expect(server?.counters.truncated).toBeGreaterThanOrEqual(2);
  });

  it('honours the EDNS payload size, up to MAX_UDP_PAYLOAD', async () => {
    await start();
    records.set(
      'mid.pool.test A',
      Array.from({ length: 40 }, (_, i) => a('mid.pool.test', `10.0.1.${i}`)),
    );
    // 40 A records ≈ 1.1 KB: over 512, under 1232.
    const edns = await dig(address, ['+bufsize=1232', '+ignore', 'mid.pool.test', 'A']);
    expect(digHeader(edns.stdout).flags).not.toContain('tc');
    expect(digAnswers(edns.stdout)).toHaveLength(40);
    expect(edns.stdout).toMatch(/EDNS: version: 0, flags:; udp: 1232/);
    const huge = await dig(address, ['+bufsize=65000', '+ignore', 'big.pool.test', 'A']);
    expect(digHeader(huge.stdout).status).toBe('NXDOMAIN'); // an unknown name still answers with a big buffer
    records.set(
      'big.pool.test A',
      Array.from({ length: 120 }, (_, i) => a('big.pool.test', `10.0.2.${i}`)),
    );
    const capped = await dig(address, ['+bufsize=65000', '+ignore', 'big.pool.test', 'A']);
    expect(digHeader(capped.stdout).flags).toContain('tc');
    expect(MAX_UDP_PAYLOAD).toBe(1232);
  });

  it('keeps no answer to a query over 512 bytes (a large EDNS option): a client cannot fill the cache with big messages', async () => {
    let asked = 0;
    hook = () => asked++;
    server = new DnsServer({ answer, answerEpoch: () => 'same' }, { host: '127.0.0.1', port: 0 });
    address = await server.listen();
    records.set('pool.test A', [a('pool.test', '10.0.0.1')]);
    for (let i = 0; i < 2; i++) {
      const big = await dig(address, ['+nocookie', `+ednsopt=65001:${'00'.repeat(500)}`, 'pool.test', 'A']);
      expect(digAnswers(big.stdout), big.stderr).toEqual([['pool.test.', 5, 'A', '10.0.0.1']]);
    }
    expect(asked).toBe(2);
    expect(server.counters).toMatchObject({ reused: 0 });
  });

  it('with an answer epoch, reuses the encoded answer to the same query until the epoch changes', async () => {
    let epoch = {};
    let asked = 0;
    hook = () => asked++;
    server = new DnsServer({ answer, answerEpoch: () => epoch }, { host: '127.0.0.1', port: 0 });
    address = await server.listen();
    records.set('pool.test A', [a('pool.test', '10.0.0.1')]);
    const first = await udpExchange(rawQuery('pool.test', 1, { id: 1 }));
    records.set('pool.test A', [a('pool.test', '10.0.0.2')]);
    // The same epoch: the first answer, with this query's id; the zone is not asked again.
    const second = await udpExchange(rawQuery('pool.test', 1, { id: 2 }));
    expect(asked).toBe(1);
    expect(second?.readUInt16BE(0)).toBe(2);
    expect(second?.subarray(2)).toEqual(first?.subarray(2));
    expect(server.counters).toMatchObject({ queries: 2, reused: 1 });
    // Another question is asked of the zone; so is the same one in a new epoch, which gets the new answer.
    await udpExchange(rawQuery('other.pool.test', 1, { id: 3 }));
    expect(asked).toBe(2);
    epoch = {};
    const third = await udpExchange(rawQuery('pool.test', 1, { id: 4 }));
    expect(asked).toBe(3);
    expect(third?.subarray(-4)).toEqual(Buffer.from([10, 0, 0, 2]));
    // dig from the same address, over UDP and TCP, sees the current answer.
    for (const transport of [[], ['+tcp']]) {
      expect(digAnswers((await dig(address, [...transport, 'pool.test', 'A'])).stdout)).toEqual([
        ['pool.test.', 5, 'A', '10.0.0.2'],
      ]);
    }
  });

  it('not IN class: REFUSED; no question: FORMERR; other opcodes: NOTIMP; the id is echoed', async () => {
    await start();
    const ch = await dig(address, ['CH', 'TXT', 'version.bind']);
    expect(digHeader(ch.stdout).status).toBe('REFUSED');
    const noQuestion = await udpExchange(rawQuery('x', 1, { qdcount: 0 }).subarray(0, 12));
    expect(noQuestion?.readUInt16BE(0)).toBe(0x1234);
    expect((noQuestion?.readUInt16BE(2) ?? 0) & 0xf).toBe(1);
    const status = await udpExchange(rawQuery('pool.test', 1, { flags: 2 << 11, id: 7 }));
    expect(status?.readUInt16BE(0)).toBe(7);
    expect((status?.readUInt16BE(2) ?? 0) & 0xf).toBe(4);
  });

  it('a zone that throws: SERVFAIL, logged, and the server keeps answering', async () => {
    const faults: string[] = [];
    server = new DnsServer(
      {
        answer: (q, c) => {
          if (q.name === 'boom.pool.test') throw new Error('bug');
          return answer(q, c);
        },
        logger: { info() {}, fault: (m) => faults.push(m) },
      },
      { host: '127.0.0.1', port: 0 },
    );
    address = await server.listen();
    expect(digHeader((await dig(address, ['boom.pool.test'])).stdout).status).toBe('SERVFAIL');
    expect(faults[0]).toMatch(/answering boom\.pool\.test A: bug/);
    expect(digHeader((await dig(address, ['ok.pool.test'])).stdout).status).toBe('NXDOMAIN');
  });

  it('garbage, truncated packets and responses get no reply and never crash it', async () => {
    await start();
    records.set('pool.test A', [a('pool.test', '127.0.0.9')]);
    const valid = rawQuery('pool.test', 1);
    const socket = dgram.createSocket('udp4');
    try {
      for (let i = 0; i < 300; i++) {
        const kind = i % 4;
        const packet =
          kind === 0
            ? randomBytes(i % 40)
            : kind === 1
              ? valid.subarray(0, i % valid.length)
              : kind === 2
                ? Buffer.from(valid.map((b, j) => (j === 12 + (i % 10) ? b ^ 0xff : b)))
                : Buffer.concat([valid.subarray(0, 2), Buffer.from([0x81, 0x80]), valid.subarray(4)]); // QR set
        socket.send(packet, address.port, address.host);
      }
      await sleep(200);
    } finally {
      socket.close();
    }
    // Compression pointer loop in the question name.
    const loop = Buffer.concat([rawQuery('x', 1).subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    expect(await udpExchange(loop, 200)).toBeUndefined();
    expect(
      await udpExchange(Buffer.concat([valid.subarray(0, 2), Buffer.from([0x81, 0x80]), valid.subarray(4)]), 200),
    ).toBeUndefined();
    expect(server?.counters.dropped).toBeGreaterThan(100);
    expect(await resolver().resolve4('pool.test')).toEqual(['127.0.0.9']);
  });

  it('TCP: several queries on one connection, split anywhere; garbage closes just that connection', async () => {
    await start();
    records.set('pool.test A', [a('pool.test', '127.0.0.9')]);
    const frame = (q: Buffer) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    const two = Buffer.concat([frame(rawQuery('pool.test', 1, { id: 1 })), frame(rawQuery('pool.test', 1, { id: 2 }))]);
    const socket = net.connect(address.port, address.host);
    const replies: number[] = [];
    let buffered = Buffer.alloc(0);
    socket.on('data', (c) => {
      buffered = Buffer.concat([buffered, c]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        replies.push(buffered.readUInt16BE(2));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
    });
    await new Promise((r) => socket.once('connect', r));
    for (const byte of two) {
      socket.write(Buffer.from([byte])); // one byte at a time
    }
    for (let i = 0; i < 100 && replies.length < 2; i++) await sleep(10);
    expect(replies).toEqual([1, 2]);
    const closed = new Promise((r) => socket.once('close', r));
    socket.write(frame(randomBytes(3)));
    await closed;
    expect(await resolver().resolve4('pool.test')).toEqual(['127.0.0.9']);
  });

  it('TCP: an idle connection is closed, and connections are bounded', async () => {
    await start({ tcpIdleMs: 100, maxTcpConnections: 2 });
    const s = net.connect(address.port, address.host);
    const started = Date.now();
    await new Promise((r) => s.once('close', r));
    expect(Date.now() - started).toBeLessThan(2_000);
    const held = [net.connect(address.port, address.host), net.connect(address.port, address.host)];
    await Promise.all(held.map((h) => new Promise((r) => h.once('connect', r))));
    await sleep(20);
    const third = net.connect(address.port, address.host);
    await new Promise((r) => third.once('close', r)); // refused by the bound
    for (const h of held) h.destroy();
  });

  it('listens on IPv6 too, UDP and TCP', async () => {
    server = new DnsServer({ answer }, { host: '::1', port: 0 });
    address = await server.listen();
    records.set('pool.test AAAA', [{ name: 'pool.test', type: 'AAAA', ttl: 5, data: '2001:db8::1' }]);
    const r = new Resolver({ timeout: 1_000, tries: 1 });
    r.setServers([`[::1]:${address.port}`]);
    expect(await r.resolve6('pool.test')).toEqual(['2001:db8::1']);
    const tcp = await dig(address, ['+tcp', '+short', 'pool.test', 'AAAA']);
    expect(tcp.stdout.trim()).toBe('2001:db8::1');
    expect(seenClients).toEqual(['::1', '::1']);
  });

  it('listens on one port for UDP and TCP, refuses a taken port, and close() frees it', async () => {
    await start();
    const taken = new DnsServer({ answer }, { host: '127.0.0.1', port: address.port });
    await expect(taken.listen()).rejects.toThrow(/unavailable/);
    await server?.close();
    server = new DnsServer({ answer }, { host: '127.0.0.1', port: address.port });
    expect((await server.listen()).port).toBe(address.port);
    expect(() => new DnsServer({ answer }, { host: 'localhost', port: 0 })).toThrow(/IP address/);
  });
});
