import type { NetworkRule, Networks } from './networks.js';

/**
 * Longest-prefix match over a networks file's rules in a few hash lookups:
 * the rules are grouped by prefix length, and an address is looked up under
 * each length in use, longest first, with its host bits shifted off. That is
 * at most 33 lookups for IPv4 (129 for IPv6), however many rules there are;
 * a linear scan of 10,000 rules took ~8 ms per DNS query. IPv4 keys are plain
 * numbers, IPv6 keys bigints.
 */
export class PrefixIndex {
  /** Per family: the prefix lengths in use, longest first, and the rules under each. */
  private readonly v4: { length: number; rules: Map<number, NetworkRule> }[] = [];
  private readonly v6: { length: number; rules: Map<bigint, NetworkRule> }[] = [];

  constructor(rules: readonly NetworkRule[]) {
    const v4 = new Map<number, Map<number, NetworkRule>>();
    const v6 = new Map<number, Map<bigint, NetworkRule>>();
    for (const rule of rules) {
      if (rule.family === 4) {
        const at = v4.get(rule.prefixLength) ?? new Map<number, NetworkRule>();
        v4.set(rule.prefixLength, at);
        const key = v4Key(Number(rule.network), rule.prefixLength);
        if (!at.has(key)) at.set(key, rule);
      } else {
        const at = v6.get(rule.prefixLength) ?? new Map<bigint, NetworkRule>();
        v6.set(rule.prefixLength, at);
        const key = rule.network >> BigInt(128 - rule.prefixLength);
        if (!at.has(key)) at.set(key, rule);
      }
    }
    for (const [length, at] of [...v4].sort((a, b) => b[0] - a[0])) this.v4.push({ length, rules: at });
    for (const [length, at] of [...v6].sort((a, b) => b[0] - a[0])) this.v6.push({ length, rules: at });
  }

  /** The longest rule containing the address, or undefined. */
  match(address: { family: 4 | 6; value: bigint }): NetworkRule | undefined {
    if (address.family === 4) {
      const value = Number(address.value);
      for (const { length, rules } of this.v4) {
        const rule = rules.get(v4Key(value, length));
        if (rule) return rule;
      }
      return undefined;
    }
    for (const { length, rules } of this.v6) {
      const rule = rules.get(address.value >> BigInt(128 - length));
      if (rule) return rule;
    }
    return undefined;
  }
}

const indexes = new WeakMap<Networks, PrefixIndex>();

/** The index of a parsed networks file, built on first use and kept as long as the file's rules are. */
export function prefixIndex(networks: Networks): PrefixIndex {
  let index = indexes.get(networks);
  if (!index) {
    index = new PrefixIndex(networks.rules);
    indexes.set(networks, index);
  }
  return index;
}

/** The network bits of an IPv4 address as a key: `>>> 32` would be a no-op, so /0 is spelled out. */
function v4Key(value: number, length: number): number {
  return length === 0 ? 0 : value >>> (32 - length);
}
