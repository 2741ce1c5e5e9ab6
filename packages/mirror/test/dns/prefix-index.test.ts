import { describe, expect, it } from 'vitest';
import { formatAddress, type NetworkRule, parseAddress, parseNetworks } from '../../src/dns/networks.js';
import { PrefixIndex, prefixIndex } from '../../src/dns/prefix-index.js';

/** The definition: the longest rule whose network contains the address (rules are sorted longest first). */
function linear(rules: readonly NetworkRule[], address: { family: 4 | 6; value: bigint }): NetworkRule | undefined {
  const bits = address.family === 4 ? 32 : 128;
  return rules.find(
    (r) =>
      r.family === address.family &&
      address.value >> BigInt(bits - r.prefixLength) === r.network >> BigInt(bits - r.prefixLength),
  );
}

/** A deterministic generator, so a failure names a case that can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('PrefixIndex', () => {
  it('matches what a linear scan of the rules, longest first, matches: IPv4 and IPv6, nested, /0 and host routes', () => {
    const rnd = random(17);
    const lines = ['0.0.0.0/0 any4', '::/0 any6', '10.0.0.0/8 a', '10.1.0.0/16 b', '10.1.2.0/24 c', '10.1.2.3/32 d'];
    const seen = new Set(lines.map((l) => l.split(' ')[0]));
    for (let i = 0; i < 3_000; i++) {
      const v6 = rnd() < 0.3;
      const length = v6 ? Math.floor(rnd() * 129) : Math.floor(rnd() * 33);
      const bits = v6 ? 128 : 32;
      // Addresses drawn from a small space, so prefixes nest and overlap often.
      let value = v6
        ? (0x2001_0db8n << 96n) | (BigInt(Math.floor(rnd() * 65536)) << 80n)
        : BigInt(0x0a000000 + Math.floor(rnd() * 65536) * 256);
      value = (value >> BigInt(bits - length)) << BigInt(bits - length);
      const cidr = `${formatAddress(v6 ? 6 : 4, value)}/${length}`;
      if (seen.has(cidr)) continue;
      seen.add(cidr);
      lines.push(`${cidr} r${i}`);
    }
    const networks = parseNetworks(lines.join('\n'));
    const index = new PrefixIndex(networks.rules);
    let matched = 0;
    for (let i = 0; i < 5_000; i++) {
      const text =
        rnd() < 0.3
          ? formatAddress(
              6,
              (0x2001_0db8n << 96n) | (BigInt(Math.floor(rnd() * 65536)) << 80n) | BigInt(Math.floor(rnd() * 1e9)),
            )
          : formatAddress(4, BigInt(0x0a000000 + Math.floor(rnd() * 2 ** 24)));
      const address = parseAddress(text);
      if (!address) throw new Error(`not an address: ${text}`);
      const want = linear(networks.rules, address);
      expect(index.match(address)?.cidr, text).toBe(want?.cidr);
      if (want && want.prefixLength > 0) matched++;
    }
    expect(matched).toBeGreaterThan(1_000);
    expect(index.match(parseAddress('10.1.2.3') as { family: 4; value: bigint })?.regions).toEqual(['d']);
    expect(index.match(parseAddress('192.0.2.1') as { family: 4; value: bigint })?.cidr).toBe('0.0.0.0/0');
  });

  it('no rules: nothing matches; prefixIndex() builds one index per networks value', () => {
    const empty = parseNetworks('default us');
    expect(prefixIndex(empty).match(parseAddress('10.0.0.1') as { family: 4; value: bigint })).toBeUndefined();
    const n = parseNetworks('10.0.0.0/8 jp');
    expect(prefixIndex(n)).toBe(prefixIndex(n));
  });

  it('10,000 networks: a lookup takes microseconds, not the milliseconds of a scan', () => {
    const lines: string[] = [];
    for (let n = 0; n < 10_000; n++) lines.push(`127.${1 + Math.floor(n / 250)}.${n % 250}.0/24 r${n % 20}`);
    const networks = parseNetworks(lines.join('\n'));
    const index = prefixIndex(networks);
    const address = parseAddress('127.40.249.9') as { family: 4; value: bigint };
    expect(index.match(address)?.cidr).toBe('127.40.249.0/24');
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) index.match(address);
    // ~1 µs each here; 20 µs leaves room for a busy machine and still fails a linear scan (~1 ms).
    expect((performance.now() - started) / 10_000).toBeLessThan(0.02);
  });
});
