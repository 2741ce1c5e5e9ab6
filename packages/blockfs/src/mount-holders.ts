import { readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseMountInfo } from '@thfc/store';

/**
 * What keeps a mount busy, as far as this process can see: processes with a
 * file under the mount open, mapped, or as their working or root directory
 * (/proc/PID/{fd,maps,cwd,root}), and loop devices backed by a file under it
 * (/sys/block/loopN/loop/backing_file), with where their file system is
 * mounted. Only links and text under /proc and /sys are read, never the mount
 * itself, so the daemon serving it may ask too. An unprivileged user sees only
 * their own processes; the kernel's EBUSY stays the final word.
 */
export type Holder =
  | {
      readonly kind: 'process';
      readonly pid: number;
      readonly command: string;
      /** Absolute path of the file, under the mount. */
      readonly path: string;
      readonly how: 'open' | 'mapped' | 'cwd' | 'root';
    }
  | {
      readonly kind: 'loop';
      readonly device: string;
      readonly path: string;
      /** Where the loop device's own file system is mounted, if it is. */
      readonly mountedAt: readonly string[];
    };

export interface HolderScanOptions {
  readonly proc?: string | undefined;
  readonly sys?: string | undefined;
  /** Processes not to report (the caller itself). */
  readonly ignorePids?: readonly number[] | undefined;
}

/** Whether `path` is the mount point or lies under it. */
export function isUnder(path: string, mountpoint: string): boolean {
  return path === mountpoint || path.startsWith(mountpoint.endsWith('/') ? mountpoint : `${mountpoint}/`);
}

/** The file paths of a /proc/PID/maps text (field 6, which may hold spaces). */
export function mappedPaths(maps: string): string[] {
  const out: string[] = [];
  for (const line of maps.split('\n')) {
    const m = /^\S+ \S+ \S+ \S+ \S+ +(\/.*)$/.exec(line);
    if (m) out.push((m[1] as string).replace(/ \(deleted\)$/, ''));
  }
  return out;
}

export async function findHolders(mountpoint: string, options: HolderScanOptions = {}): Promise<Holder[]> {
  const proc = options.proc ?? '/proc';
  const sys = options.sys ?? '/sys';
  const ignore = new Set(options.ignorePids ?? [process.pid]);
  const holders: Holder[] = [];
  const pids = (await readdir(proc).catch(() => [] as string[]))
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => !ignore.has(pid));
  for (const pid of pids) holders.push(...(await processHolders(join(proc, String(pid)), pid, mountpoint)));
  holders.push(...(await loopHolders(sys, proc, mountpoint)));
  return holders;
}

async function processHolders(dir: string, pid: number, mountpoint: string): Promise<Holder[]> {
  const found = new Map<string, Holder>();
  const command = (await readFile(join(dir, 'comm'), 'utf8').catch(() => '?')).trim();
  const add = (path: string, how: 'open' | 'mapped' | 'cwd' | 'root') => {
    if (isUnder(path, mountpoint) && !found.has(path)) found.set(path, { kind: 'process', pid, command, path, how });
  };
  const fds = await readdir(join(dir, 'fd')).catch(() => [] as string[]);
  const targets = await Promise.all(fds.map((fd) => readlink(join(dir, 'fd', fd)).catch(() => '')));
  for (const t of targets) add(t, 'open');
  for (const p of mappedPaths(await readFile(join(dir, 'maps'), 'utf8').catch(() => ''))) add(p, 'mapped');
  for (const how of ['cwd', 'root'] as const) add(await readlink(join(dir, how)).catch(() => ''), how);
  return [...found.values()];
}

async function loopHolders(sys: string, proc: string, mountpoint: string): Promise<Holder[]> {
  const devices = (await readdir(join(sys, 'block')).catch(() => [] as string[])).filter((d) => /^loop\d+$/.test(d));
  const holders: Holder[] = [];
  let mounts: { mountpoint: string; source: string }[] | undefined;
  for (const d of devices) {
    const backing = (await readFile(join(sys, 'block', d, 'loop', 'backing_file'), 'utf8').catch(() => '')).trim();
    if (!backing || !isUnder(backing.replace(/ \(deleted\)$/, ''), mountpoint)) continue;
    mounts ??= parseMountInfo(await readFile(join(proc, 'self', 'mountinfo'), 'utf8').catch(() => ''));
    const device = `/dev/${d}`;
    holders.push({
      kind: 'loop',
      device,
      path: backing,
      mountedAt: mounts.filter((m) => m.source === device).map((m) => m.mountpoint),
    });
  }
  return holders;
}

/** One clause per holder, at most `max` of them: `/dev/loop0 (mounted at /mnt/e) reads small; pid 42 (qemu) has small open`. */
export function describeHolders(holders: readonly Holder[], mountpoint: string, max = 4): string {
  const name = (p: string) => relative(mountpoint, p) || '.';
  const clauses = holders.slice(0, max).map((h) => {
    if (h.kind === 'loop')
      return `${h.device}${h.mountedAt.length ? ` (mounted at ${h.mountedAt.join(', ')})` : ''} reads ${name(h.path)}`;
    const what =
      h.how === 'open'
        ? `has ${name(h.path)} open`
        : h.how === 'mapped'
          ? `maps ${name(h.path)}`
          : `has its ${h.how === 'cwd' ? 'working' : 'root'} directory in it`;
    return `pid ${h.pid} (${h.command}) ${what}`;
  });
  if (holders.length > max) clauses.push(`${holders.length - max} more`);
  return clauses.join('; ');
}
