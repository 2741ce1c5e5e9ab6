import { UsageError } from '@thfc/format';
import ipaddr from 'ipaddr.js';
import { prefixIndex } from './prefix-index.js';

/**
 * The networks file: which mirror regions each client network prefers, in
 * order. DNS-Balance's `addrdb.rb` as plain text (docs/dns-balance.md):
 *
 *   # CIDR            REGION…      (most preferred first)
 *   10.1.0.0/16       jp us
 *   10.0.0.0/8        us jp
 *   2001:db8::/32     eu us
 *   default           us
 *
 * A client address is matched by longest prefix (IPv4 and IPv6; an
 * IPv4-mapped IPv6 address counts as its IPv4 address), falling back to
 * `default`, then to no preference. Pure: text in, rules out. Addresses are
 * read and written by ipaddr.js (IPv4 only as four decimal parts, as
 * node:net takes it, never ipaddr's `10.1` or `0x0a…` shorthands).
 */

export interface NetworkRule {
  /** As written, normalised: `10.0.0.0/8`, `2001:db8::/32`. */
  readonly cidr: string;
  readonly family: 4 | 6;
  /** The network address as an integer (32 or 128 bits). */
  readonly network: bigint;
  readonly prefixLength: number;
  readonly regions: readonly string[];
  readonly line: number;
}

export interface Networks {
  /** Longest prefix first, so the first rule that contains an address is its longest match. */
  readonly rules: readonly NetworkRule[];
  /** The `default` line's regions; empty when there is none. */
  readonly defaultRegions: readonly string[];
}

/** No networks file: every client gets no regional preference, so mirrors are ordered by badness alone. */
export const NO_NETWORKS: Networks = Object.freeze({ rules: [], defaultRegions: [] });

/** The same rule as mirror record regions (registry/mirror-record.ts), so names compare exactly. */
const REGION = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** A networks file is at most a few thousand prefixes; 4 MiB bounds a wrong path, not real use. */
export const MAX_NETWORKS_FILE_BYTES = 4 * 1024 * 1024;

export function parseNetworks(text: string, file = 'networks file'): Networks {
  if (text.length > MAX_NETWORKS_FILE_BYTES)
    throw new UsageError(`${file}: larger than ${MAX_NETWORKS_FILE_BYTES} bytes`);
  const rules: NetworkRule[] = [];
  const seen = new Map<string, number>();
  let defaultRegions: string[] | undefined;
  let defaultLine = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const fields = (raw.split('#')[0] as string).trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0) return;
    const bad = (why: string) => new UsageError(`${file} line ${line}: ${why}`);
    const [what, ...regions] = fields as [string, ...string[]];
    if (regions.length === 0) throw bad(`"${what}" names no region (expected "CIDR REGION…" or "default REGION…")`);
    const repeated = new Set<string>();
    for (const r of regions) {
      if (!REGION.test(r)) throw bad(`bad region "${r}" (a lower-case word: a-z, 0-9, - or _)`);
      if (repeated.has(r)) throw bad(`region "${r}" is listed twice`);
      repeated.add(r);
    }
    if (what === 'default') {
      if (defaultRegions) throw bad(`a second "default" line (the first is line ${defaultLine})`);
      defaultRegions = regions;
      defaultLine = line;
      return;
    }
    const rule = parseCidr(what, bad);
    const before = seen.get(rule.cidr);
    if (before !== undefined) throw bad(`${rule.cidr} is already listed on line ${before}`);
    seen.set(rule.cidr, line);
    rules.push({ ...rule, regions, line });
  });
  // Stable: among equal lengths (disjoint prefixes) the file order is kept, which does not matter for matching.
  rules.sort((a, b) => b.prefixLength - a.prefixLength);
  return { rules, defaultRegions: defaultRegions ?? [] };
}

/**
 * The regions a client prefers, most preferred first, and which line
 * decided it (`10.0.0.0/8`, `default`, or `none`).
 */
export function preferredRegions(
  networks: Networks,
  clientAddress: string,
): { regions: readonly string[]; matched: string } {
  const address = parseAddress(clientAddress);
  const rule = address && networks.rules.length ? prefixIndex(networks).match(address) : undefined;
  if (rule) return { regions: rule.regions, matched: rule.cidr };
  if (networks.defaultRegions.length) return { regions: networks.defaultRegions, matched: 'default' };
  return { regions: [], matched: 'none' };
}

/**
 * An IP address as a family and an integer; IPv4-mapped IPv6 (`::ffff:a.b.c.d`,
 * how a dual-stack socket reports IPv4 clients) becomes IPv4. A zone index
 * (`%eth0`) is ignored. Undefined for anything that is not an address.
 */
export function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  const address = parseIp(text.replace(/%.*$/, ''));
  if (!address) return undefined;
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress())
    return { family: 4, value: addressValue((address as ipaddr.IPv6).toIPv4Address()) };
  return { family: address.kind() === 'ipv4' ? 4 : 6, value: addressValue(address) };
}

function parseCidr(text: string, bad: (why: string) => Error): Omit<NetworkRule, 'regions' | 'line'> {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) throw bad(`"${text}" is not a CIDR (ADDRESS/LENGTH)`);
  const address = addr.includes('%') ? undefined : parseIp(addr);
  if (!address) throw bad(`"${addr}" is not an IPv4 or IPv6 address`);
  const family = address.kind() === 'ipv4' ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  const prefixLength = len === undefined ? bits : Number(len);
  if (len !== undefined && !/^\d{1,3}$/.test(len)) throw bad(`bad prefix length "/${len}"`);
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bits) {
    throw bad(`prefix length /${len} is out of range for IPv${family} (0–${bits})`);
  }
  const value = addressValue(address);
  const hostBits = BigInt(bits - prefixLength);
  const network = (value >> hostBits) << hostBits;
  if (network !== value) {
    throw bad(`${text} has host bits set; the network is ${formatAddress(family, network)}/${prefixLength}`);
  }
  return { cidr: `${formatAddress(family, network)}/${prefixLength}`, family, network, prefixLength };
}

/** IPv4 as four decimal parts (no `10.1`, octal or hex forms) or any IPv6 text; undefined otherwise. */
function parseIp(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text) && !/(^|\.)0\d/.test(text)) return ipaddr.IPv4.parse(text);
  if (!text.includes(':') || !ipaddr.IPv6.isValid(text)) return undefined;
  return ipaddr.IPv6.parse(text);
}

function addressValue(address: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return address.toByteArray().reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

/** Canonical text of an address integer: dotted quad, or RFC 5952 IPv6 (longest zero run as `::`). */
export function formatAddress(family: 4 | 6, value: bigint): string {
  const length = family === 4 ? 4 : 16;
  const bytes = Array.from({ length }, (_, i) => Number((value >> BigInt(8 * (length - 1 - i))) & 0xffn));
  return family === 4 ? new ipaddr.IPv4(bytes).toString() : new ipaddr.IPv6(toParts(bytes)).toRFC5952String();
}

/** 16 bytes as ipaddr's eight 16-bit parts. */
function toParts(bytes: readonly number[]): number[] {
  return Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number));
}
