import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { encodeResponse } from '../../src/dns/response-encoder.js';
import type { ZoneRecord } from '../../src/dns/zone.js';

/** The question section of a query for `name`/`type`, as a client sends it. */
function question(name: string, type: dnsPacket.RecordType | 'ANY'): Uint8Array {
  // dns-packet's types omit ANY, which it encodes (255) like any other.
  const q = dnsPacket.encode({
    type: 'query',
    id: 1,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
  });
  return q.subarray(12);
}

const ZONE = 'pool.test';
const srv = (i: number): ZoneRecord => ({
  name: `_thfc._tcp.Pool.Test`,
  type: 'SRV',
  ttl: 5,
  data: { priority: i, weight: 10_000 - i, port: 8080 + i, target: `m-10-0-0-${i}.${ZONE}` },
});
const a = (i: number): ZoneRecord => ({ name: `m-10-0-0-${i}.${ZONE}`, type: 'A', ttl: 5, data: `10.0.0.${i}` });

describe('encodeResponse', () => {
  it('decodes (dns-packet) to the records given, every type the zone uses, with the question echoed byte for byte', () => {
    const q = question('Pool.Test', 'ANY');
    const answers: ZoneRecord[] = [
      {
        name: 'Pool.Test',
        type: 'SOA',
        ttl: 5,
        data: {
          mname: `ns.${ZONE}`,
          rname: `hostmaster.${ZONE}`,
          serial: 1_700_000_000,
          refresh: 3600,
          retry: 600,
          expire: 86400,
          minimum: 5,
        },
      },
      { name: 'Pool.Test', type: 'NS', ttl: 5, data: `ns.${ZONE}` },
      { name: 'Pool.Test', type: 'A', ttl: 5, data: '127.0.0.2' },
      { name: 'Pool.Test', type: 'AAAA', ttl: 5, data: '2001:db8::1' },
      { name: 'Pool.Test', type: 'TXT', ttl: 5, data: ['http://127.0.0.2:8080/', 'https://m.example/x/'] },
    ];
    const additionals: ZoneRecord[] = [{ name: `ns.${ZONE}`, type: 'A', ttl: 5, data: '127.0.0.1' }];
    const bytes = encodeResponse(
      { id: 4242, flags: 0x0400 | 0x0100, question: q, questionCount: 1, ednsPayload: 1232 },
      { answers, authorities: [], additionals },
    );
    expect(Buffer.from(bytes.subarray(12, 12 + q.length)).equals(Buffer.from(q))).toBe(true);
    const d = dnsPacket.decode(bytes);
    expect(d.id).toBe(4242);
    expect(d.type).toBe('response');
    expect(d.flag_aa).toBe(true);
    expect(d.flag_rd).toBe(true);
    expect(d.flag_tc).toBe(false);
    expect((d as { rcode?: string }).rcode).toBe('NOERROR');
    expect(d.questions).toEqual([{ name: 'Pool.Test', type: 'ANY', class: 'IN' }]);
    expect(d.answers?.map((r) => [r.name, r.type, (r as { ttl?: number }).ttl, (r as { data: unknown }).data])).toEqual(
      [
        ['Pool.Test', 'SOA', 5, { ...(answers[0]?.data as object) }],
        ['Pool.Test', 'NS', 5, 'ns.pool.test'],
        ['Pool.Test', 'A', 5, '127.0.0.2'],
        ['Pool.Test', 'AAAA', 5, '2001:db8::1'],
        ['Pool.Test', 'TXT', 5, [Buffer.from('http://127.0.0.2:8080/'), Buffer.from('https://m.example/x/')]],
      ],
    );
    const opt = d.additionals?.find((r) => r.type === 'OPT') as dnsPacket.OptAnswer;
    expect(opt.udpPayloadSize).toBe(1232);
    expect(d.additionals?.filter((r) => r.type === 'A').map((r) => [r.name, (r as { data: string }).data])).toEqual([
      ['ns.pool.test', '127.0.0.1'],
    ]);
  });

  it('compresses names: 16 SRV records and their A records fit 1232 bytes; SRV targets are written whole', () => {
    const q = question('_thfc._tcp.Pool.Test', 'SRV');
    const answers = Array.from({ length: 16 }, (_, i) => srv(i));
    const additionals = Array.from({ length: 16 }, (_, i) => a(i));
    const bytes = encodeResponse(
      { id: 1, flags: 0x0400, question: q, questionCount: 1, ednsPayload: 1232 },
      { answers, authorities: [], additionals },
    );
    expect(bytes.length).toBeLessThanOrEqual(1232);
    const plain = dnsPacket.encode({
      type: 'response',
      id: 1,
      questions: [{ name: '_thfc._tcp.Pool.Test', type: 'SRV', class: 'IN' }],
      answers: answers.map((r) => ({ ...r, class: 'IN' }) as dnsPacket.Answer),
      additionals: additionals.map((r) => ({ ...r, class: 'IN' }) as dnsPacket.Answer),
    });
    expect(bytes.length).toBeLessThan(plain.length * 0.7);
    const d = dnsPacket.decode(bytes);
    expect(d.answers?.map((r) => (r as dnsPacket.SrvAnswer).data)).toEqual(answers.map((r) => r.data));
    expect(d.answers?.every((r) => r.name === '_thfc._tcp.Pool.Test')).toBe(true);
    expect(d.additionals?.filter((r) => r.type === 'A').map((r) => [r.name, (r as { data: string }).data])).toEqual(
      additionals.map((r) => [r.name, r.data]),
    );
    // Each SRV target appears in full in the bytes (RFC 2782: no compression in that field).
    for (let i = 0; i < 16; i++) {
      const wire = Buffer.concat([
        Buffer.from([`m-10-0-0-${i}`.length]),
        Buffer.from(`m-10-0-0-${i}`),
        Buffer.from([4]),
        Buffer.from('pool'),
        Buffer.from([4]),
        Buffer.from('test'),
        Buffer.from([0]),
      ]);
      expect(bytes.includes(wire), `target ${i}`).toBe(true);
    }
  });

  it('no records, no OPT: just the header and the question; a bad label or address is a RangeError', () => {
    const q = question('nope.pool.test', 'A');
    const bytes = encodeResponse(
      { id: 7, flags: 3, question: q, questionCount: 1 },
      { answers: [], authorities: [], additionals: [] },
    );
    expect(bytes.length).toBe(12 + q.length);
    expect((dnsPacket.decode(bytes) as { rcode?: string }).rcode).toBe('NXDOMAIN');
    const none = { authorities: [], additionals: [] };
    const hdr = { id: 7, flags: 0, question: q, questionCount: 1 };
    expect(() =>
      encodeResponse(hdr, { answers: [{ name: `${'x'.repeat(64)}.t`, type: 'A', ttl: 1, data: '1.2.3.4' }], ...none }),
    ).toThrow(RangeError);
    expect(() =>
      encodeResponse(hdr, { answers: [{ name: 'a.t', type: 'A', ttl: 1, data: '2001:db8::1' }], ...none }),
    ).toThrow(RangeError);
    expect(() =>
      encodeResponse(hdr, { answers: [{ name: 'a.t', type: 'TXT', ttl: 1, data: ['x'.repeat(256)] }], ...none }),
    ).toThrow(RangeError);
  });
});
