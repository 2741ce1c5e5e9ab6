import { UsageError } from '@thfc/format';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAddress, NO_NETWORKS, parseAddress, parseNetworks, preferredRegions } from '../../src/dns/networks.js';

const FILE = `
# client networks → preferred regions
127.0.0.2/32     jp us
127.0.0.0/8      us jp      # the rest of loopback
10.1.0.0/16      jp
10.0.0.0/8       us
2001:db8::/32    eu us
2001:db8:1::/48  jp
::1              jp
default          us eu
`;

describe('parseNetworks', () => {
  it('reads CIDR → regions and a default, longest prefix first', () => {
    const n = parseNetworks(FILE);
    expect(n.defaultRegions).toEqual(['us', 'eu']);
    expect(n.rules.map((r) => r.cidr)).toEqual([
      '::1/128',
      '2001:db8:1::/48',
      '127.0.0.2/32',
      '2001:db8::/32',
      '10.1.0.0/16',
      '127.0.0.0/8',
      '10.0.0.0/8',
    ]);
    expect(n.rules.find((r) => r.cidr === '127.0.0.2/32')).toMatchObject({ line: 3, regions: ['jp', 'us'] });
  });

  it('names the file and line of every mistake', () => {
    const cases: [string, RegExp][] = [
      ['10.0.0.0/8', /n line 1: "10\.0\.0\.0\/8" names no region/],
      ['10.0.0.0/33 jp', /prefix length \/33 is out of range for IPv4/],
      ['10.0.0.0/x jp', /bad prefix length/],
      ['10.0.0.0/8/9 jp', /not a CIDR/],
      ['10.0.0.300/8 jp', /not an IPv4 or IPv6 address/],
      ['example.org jp', /not an IPv4 or IPv6 address/],
      ['10.0.0.1/8 jp', /10\.0\.0\.1\/8 has host bits set; the network is 10\.0\.0\.0\/8/],
      ['2001:db8::1/32 jp', /the network is 2001:db8::\/32/],
      ['10.0.0.0/8 JP', /bad region "JP"/],
      ['10.0.0.0/8 jp jp', /region "jp" is listed twice/],
      ['10.0.0.0/8 jp\n10.0.0.0/8 us', /line 2: 10\.0\.0\.0\/8 is already listed on line 1/],
      ['default jp\ndefault us', /line 2: a second "default" line \(the first is line 1\)/],
      ['2001:db8::/129 jp', /prefix length \/129 is out of range for IPv6 \(0–128\)/],
      ['2001:db8:::1/64 jp', /"2001:db8:::1" is not an IPv4 or IPv6 address/],
      ['1:2:3:4:5:6:7:8:9/128 jp', /not an IPv4 or IPv6 address/],
      ['fe80::%eth0/64 jp', /"fe80::%eth0" is not an IPv4 or IPv6 address/],
      ['2001:db8::g/128 jp', /not an IPv4 or IPv6 address/],
      ['010.0.0.0/8 jp', /"010\.0\.0\.0" is not an IPv4 or IPv6 address/],
      ['0x0a.0.0.0/8 jp', /not an IPv4 or IPv6 address/],
      ['10.0.0/8 jp', /not an IPv4 or IPv6 address/],
      ['10.0.0.0/ jp', /bad prefix length "\/"/],
      ['10.0.0.0/-1 jp', /bad prefix length "\/-1"/],
      ['/8 jp', /"" is not an IPv4 or IPv6 address/],
    ];
    for (const [text, pattern] of cases) {
      expect(() => parseNetworks(text, 'n'), text).toThrow(UsageError);
      expect(() => parseNetworks(text, 'n'), text).toThrow(pattern);
    }
  });
});

describe('preferredRegions', () => {
  const n = parseNetworks(FILE);
  it('longest prefix wins, IPv4 and IPv6', () => {
    expect(preferredRegions(n, '127.0.0.2')).toEqual({ regions: ['jp', 'us'], matched: '127.0.0.2/32' });
    expect(preferredRegions(n, '127.0.0.3')).toEqual({ regions: ['us', 'jp'], matched: '127.0.0.0/8' });
    expect(preferredRegions(n, '10.1.2.3').matched).toBe('10.1.0.0/16');
    expect(preferredRegions(n, '10.2.0.1').matched).toBe('10.0.0.0/8');
    expect(preferredRegions(n, '2001:db8:1:2::5').matched).toBe('2001:db8:1::/48');
    expect(preferredRegions(n, '2001:db8:2::5').matched).toBe('2001:db8::/32');
    expect(preferredRegions(n, '::1').matched).toBe('::1/128');
  });

  it('an IPv4-mapped IPv6 client (a dual-stack socket) matches as IPv4', () => {
    expect(preferredRegions(n, '::ffff:127.0.0.2').matched).toBe('127.0.0.2/32');
    expect(preferredRegions(n, '::ffff:7f00:3').matched).toBe('127.0.0.0/8');
  });

  it('falls back to default, then to no preference', () => {
    expect(preferredRegions(n, '192.0.2.1')).toEqual({ regions: ['us', 'eu'], matched: 'default' });
    expect(preferredRegions(n, 'not an address')).toEqual({ regions: ['us', 'eu'], matched: 'default' });
    expect(preferredRegions(NO_NETWORKS, '10.0.0.1')).toEqual({ regions: [], matched: 'none' });
  });

  it('/0 matches every address of its family', () => {
    const all = parseNetworks('0.0.0.0/0 jp\n::/0 eu');
    expect(preferredRegions(all, '203.0.113.9').regions).toEqual(['jp']);
    expect(preferredRegions(all, '2001:db8::9').regions).toEqual(['eu']);
  });

  it('agrees with a brute-force longest-prefix match (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })), {
          maxLength: 20,
        }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (prefixes, client) => {
          const unique = new Map<string, { net: number; len: number }>();
          for (const [v, len] of prefixes) {
            const net = len === 0 ? 0 : (v >>> (32 - len)) << (32 - len);
            const cidr = `${formatAddress(4, BigInt(net >>> 0))}/${len}`;
            if (!unique.has(cidr)) unique.set(cidr, { net: net >>> 0, len });
          }
          const text = [...unique.keys()].map((c, i) => `${c} r${i}`).join('\n');
          const networks = parseNetworks(text);
          let best: { cidr: string; len: number } | undefined;
          for (const [cidr, { net, len }] of unique) {
            const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
            if ((client & mask) >>> 0 === net && (!best || len > best.len)) best = { cidr, len };
          }
          const got = preferredRegions(networks, formatAddress(4, BigInt(client)));
          expect(got.matched).toBe(best?.cidr ?? 'none');
        },
      ),
      { numRuns: 300, seed: 42 },
    );
  });
});

describe('addresses', () => {
  it('parses and formats IPv4, IPv6 (RFC 5952) and mapped forms', () => {
    const round = (s: string) => {
      const a = parseAddress(s);
      return a && formatAddress(a.family, a.value);
    };
    expect(round('127.0.0.1')).toBe('127.0.0.1');
    expect(round('2001:DB8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(round('::')).toBe('::');
    expect(round('fe80::1%eth0')).toBe('fe80::1');
    expect(round('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(round('2001:db8::10.0.0.1')).toBe('2001:db8::a00:1');
    expect(parseAddress('10.0.0')).toBeUndefined();
    for (const bad of [
      '',
      '10.0.0.256',
      '010.0.0.1',
      '0x7f.0.0.1',
      '127.1',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      'fe80::g',
      'x',
    ])
      expect(parseAddress(bad), bad).toBeUndefined();
  });

  it('reads IPv6 CIDRs in every spelling, normalised, and mapped IPv4 prefixes as IPv6', () => {
    const n = parseNetworks('2001:0DB8:0000::/48 eu\n::ffff:10.0.0.0/104 us\n::/0 jp\nfe80::1:0:0:0/80 jp');
    expect(n.rules.map((r) => [r.cidr, r.family, r.prefixLength])).toEqual([
      ['::ffff:a00:0/104', 6, 104],
      ['fe80::1:0:0:0/80', 6, 80],
      ['2001:db8::/48', 6, 48],
      ['::/0', 6, 0],
    ]);
    expect(n.rules[2]?.network).toBe(0x20010db8n << 96n);
    expect(preferredRegions(n, '2001:db8:0:ffff::1').matched).toBe('2001:db8::/48');
  });
});
