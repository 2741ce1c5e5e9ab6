import { resolve } from 'node:path';
import { localPath } from './locations.js';

/**
 * The httpstorged flags thfc-vm passes through when IMAGE has to be mounted,
 * as data (the CLI builds its options from this table) and as pure argument
 * building (tested without a mount). httpstorged's own parser and docs stay
 * the authority on what each flag means.
 */

/** One pass-through flag: [flag, value placeholder (undefined: a switch), help, repeatable]. */
export type MountFlag = readonly [flag: string, value: string | undefined, help: string, repeatable?: boolean];

export const MOUNT_FLAGS: readonly MountFlag[] = [
  ['--cache', '<dir>', 'block cache directory (httpstorged default /var/tmp/blocks)'],
  ['--cache-size', '<bytes>', 'cap the block cache'],
  ['--memory-cache', '<bytes>', 'RAM for recently used blocks'],
  ['--nocache', undefined, 'keep blocks in RAM only'],
  ['--offline', undefined, 'never touch the network: boot from cached blocks only'],
  ['--paranoid', undefined, 'verify cached blocks on every use'],
  ['--trust', '<pubkey>', 'refuse an index not signed by this key (repeatable)', true],
  ['--trust-store', '<path>', 'trust-store file or directory: keys with expiry, scope, revocations (repeatable)', true],
  ['--pin', '<digest>', 'boot exactly this version (sha256:<hex>) of the image'],
  ['--mirror', '<base-url>', 'block store to fetch from instead of the index directory (repeatable)', true],
  ['--pool', '<zone>', 'find mirrors through DNS-Balance; IMAGE may then be a bare NAME'],
  ['--dns', '<host:port>', 'the DNS server to ask for --pool'],
  ['--measure-blocks', undefined, 'also measure each block the first time it is read'],
  ['--tpm', undefined, 'extend every measurement into a TPM PCR too'],
  ['--tpm-pcr', '<n>', 'the PCR measurements extend'],
  ['--tpm-tcti', '<tcti>', 'how to reach the TPM'],
  ['--http2', undefined, 'offer HTTP/2 to https mirrors'],
  ['--connections', '<n>', 'pin the requests in flight per mirror (default: adaptive)'],
  ['--max-connections', '<n>', 'most requests in flight per mirror when adaptive'],
  ['--readahead', '<n>', 'most blocks read ahead of a sequential reader'],
  ['--low-speed', '<bytes>', 'abandon a transfer slower than BYTES per second for --low-speed-time'],
  ['--low-speed-time', '<seconds>', 'how long a transfer may stay below --low-speed'],
  ['--timeout', '<seconds>', 'per-request timeout'],
  ['--retries', '<n>', 'rounds over all mirrors before a read fails'],
  ['--proxy', '<url>', 'HTTP proxy'],
  ['--prefetch-parallel', '<n>', 'boot-profile blocks fetched at once'],
  ['--prefetch-rate', '<bytes>', 'cap profile prefetch and fill at BYTES per second'],
];

/** commander's option key of a flag: --cache-size → cacheSize. */
export function optionKey(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The pass-through flags present in commander's parsed options, in table order, as httpstorged arguments. */
export function mountArgs(o: Readonly<Record<string, unknown>>): string[] {
  const args: string[] = [];
  for (const [flag, value] of MOUNT_FLAGS) {
    const v = o[optionKey(flag)];
    if (v === undefined || v === false) continue;
    if (value === undefined) args.push(flag);
    else for (const x of Array.isArray(v) ? v : [v]) args.push(flag, String(x));
  }
  return args;
}

/**
 * Boot-profile options of a boot (docs/boot-profiles.md). Typed rather than
 * left among the pass-through flags because thfc-vm acts on them: it refuses
 * them for a disk it does not mount, checks the files before booting, and
 * reports what was recorded.
 */
export interface ProfileOptions {
  /** Record the blocks the guest touches into this file (httpstorged writes it when the mount stops). */
  readonly record?: string | undefined;
  /** Replay this profile (a file or an http(s) URL) instead of NAME.profile beside the index; false: replay none. */
  readonly prefetch?: string | false | undefined;
  /** After the profile, fetch the rest of the image in the background. */
  readonly fill?: boolean | undefined;
}

/** The profile options as commander parsed them (`--no-prefetch` makes `prefetch` false). */
export function profileOptionsOf(o: Readonly<Record<string, unknown>>): ProfileOptions | undefined {
  const p: ProfileOptions = {
    record: o.recordProfile as string | undefined,
    prefetch: o.prefetch as string | false | undefined,
    fill: o.fill === true ? true : undefined,
  };
  return p.record === undefined && p.prefetch === undefined && !p.fill ? undefined : p;
}

/** The flags of `p` that were given, for messages: ['--record-profile', '--fill']. */
export function profileFlags(p: ProfileOptions | undefined): string[] {
  if (!p) return [];
  return [
    ...(p.record !== undefined ? ['--record-profile'] : []),
    ...(p.prefetch === false ? ['--no-prefetch'] : p.prefetch !== undefined ? ['--prefetch'] : []),
    ...(p.fill ? ['--fill'] : []),
  ];
}

/**
 * httpstorged arguments for `p`. Local paths are made absolute against `cwd`:
 * the daemon is a separate process, and --dry-run should print commands that
 * work from anywhere.
 */
export function profileArgs(p: ProfileOptions | undefined, cwd: string): string[] {
  if (!p) return [];
  const args: string[] = [];
  if (p.record !== undefined) args.push('--record-profile', resolve(cwd, p.record));
  if (p.prefetch === false) args.push('--no-prefetch');
  else if (p.prefetch !== undefined) {
    const local = localPath(p.prefetch);
    args.push('--prefetch', local === undefined ? p.prefetch : resolve(cwd, local));
  }
  if (p.fill) args.push('--fill');
  return args;
}
