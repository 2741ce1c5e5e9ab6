import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  MOUNT_FLAGS,
  mountArgs,
  optionKey,
  profileArgs,
  profileFlags,
  profileOptionsOf,
} from '../src/mount-options.js';

/** Parses ARGV with the boot command's mount options as the CLI declares them (cli.ts addBootOptions). */
function parse(argv: string[]): Record<string, unknown> {
  const cmd = new Command('boot').exitOverride();
  for (const [flag, value, , repeatable] of MOUNT_FLAGS) {
    const spec = value ? `${flag} ${value}` : flag;
    if (repeatable) cmd.option(spec, '', (v: string, prev: string[] = []) => [...prev, v]);
    else cmd.option(spec, '');
  }
  cmd.option('--record-profile <file>').option('--prefetch <file|url>').option('--no-prefetch').option('--fill');
  cmd.parse(argv, { from: 'user' });
  return cmd.opts();
}

describe('mountArgs', () => {
  it('passes the given flags through in table order, repeatable ones once per value', () => {
    const o = parse([
      '--readahead',
      '0',
      '--trust',
      'a.pub',
      '--cache',
      '/c',
      '--trust',
      'b.pub',
      '--offline',
      '--prefetch-parallel',
      '8',
      '--prefetch-rate',
      '1M',
    ]);
    expect(mountArgs(o)).toEqual([
      '--cache',
      '/c',
      '--offline',
      '--trust',
      'a.pub',
      '--trust',
      'b.pub',
      '--readahead',
      '0',
      '--prefetch-parallel',
      '8',
      '--prefetch-rate',
      '1M',
    ]);
  });

  it('passes trust, pinning, pool, measurement and HTTP/2 flags through (issue 15 §3)', () => {
    const flags = [
      '--trust-store',
      '/etc/thfc/trust',
      '--pin',
      `sha256:${'a'.repeat(64)}`,
      '--pool',
      'pool.example',
      '--dns',
      '127.0.0.1:5353',
      '--measure-blocks',
      '--tpm',
      '--tpm-pcr',
      '16',
      '--http2',
    ];
    expect(mountArgs(parse(flags))).toEqual(flags);
  });

  it('leaves the profile flags to profileArgs', () => {
    expect(mountArgs(parse(['--record-profile', 'p', '--fill', '--no-prefetch']))).toEqual([]);
  });

  it('maps flags to commander keys', () => {
    expect(optionKey('--cache-size')).toBe('cacheSize');
    expect(optionKey('--prefetch-parallel')).toBe('prefetchParallel');
  });
});

describe('profile options', () => {
  it('none given: nothing', () => {
    expect(profileOptionsOf(parse(['--cache', '/c']))).toBeUndefined();
    expect(profileArgs(undefined, '/w')).toEqual([]);
    expect(profileFlags(undefined)).toEqual([]);
  });

  it('--record-profile: made absolute against the working directory', () => {
    const p = profileOptionsOf(parse(['--record-profile', 'out/boot.profile']));
    expect(p).toEqual({ record: 'out/boot.profile', prefetch: undefined, fill: undefined });
    expect(profileArgs(p, '/work')).toEqual(['--record-profile', '/work/out/boot.profile']);
    expect(profileArgs({ record: '/abs/p' }, '/work')).toEqual(['--record-profile', '/abs/p']);
  });

  it('--prefetch FILE|file://|URL, --no-prefetch, --fill', () => {
    expect(profileArgs(profileOptionsOf(parse(['--prefetch', 'g.profile'])), '/w')).toEqual([
      '--prefetch',
      '/w/g.profile',
    ]);
    expect(profileArgs({ prefetch: 'file:///srv/g.profile' }, '/w')).toEqual(['--prefetch', '/srv/g.profile']);
    expect(profileArgs({ prefetch: 'http://m/g.profile' }, '/w')).toEqual(['--prefetch', 'http://m/g.profile']);
    const off = profileOptionsOf(parse(['--no-prefetch', '--fill']));
    expect(off).toEqual({ record: undefined, prefetch: false, fill: true });
    expect(profileArgs(off, '/w')).toEqual(['--no-prefetch', '--fill']);
    expect(profileFlags(off)).toEqual(['--no-prefetch', '--fill']);
  });

  it('all three at once, in a fixed order', () => {
    const p = profileOptionsOf(parse(['--fill', '--prefetch', 'http://m/x.profile', '--record-profile', '/r']));
    expect(profileArgs(p, '/w')).toEqual(['--record-profile', '/r', '--prefetch', 'http://m/x.profile', '--fill']);
    expect(profileFlags(p)).toEqual(['--record-profile', '--prefetch', '--fill']);
  });
});
