import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatBytes } from '@thfc/cli';
import { type MountEntry, mountTable } from '@thfc/store';
import type { MountStatus } from './mount.js';

/**
 * The file-system type of an httpstorged mount in /proc/self/mountinfo: libfuse's `fuse.SUBTYPE`, and
 * httpstorged mounts with subtype `thfc` (fuse-adapter.ts). Only these are read: a status file on
 * another FUSE file system is not ours, and a hung foreign daemon would hang the listing.
 */
export const THFC_FSTYPE = 'fuse.thfc';

/** One mount of `httpstorged list`: its status, or why there is none (a daemon that died). */
export type ListedMount =
  | { readonly mountpoint: string; readonly status: MountStatus }
  | { readonly mountpoint: string; readonly status: null; readonly problem: string };

/** The httpstorged mounts of a mount table: the pure half of listMounts (the last mount on a path is the one seen). */
export function thfcMountpoints(table: readonly MountEntry[]): string[] {
  const seen = new Set<string>();
  for (const m of table) if (m.fstype === THFC_FSTYPE) seen.add(m.mountpoint);
  return [...seen];
}

/** Whether parsed JSON is a mount's status (and not some other file that happens to be called stats.json). */
export function isMountStatus(v: unknown): v is MountStatus {
  const s = v as Partial<MountStatus> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.mountpoint === 'string' &&
    typeof s.pid === 'number' &&
    Array.isArray(s.images) &&
    typeof s.cache === 'object'
  );
}

/**
 * Every httpstorged mount of this machine's mount namespace, each with its
 * `.thfc/stats.json`. Reads the mounts, so it must never run in a process
 * that serves one (the CLI's `list` never does).
 */
export async function listMounts(signal?: AbortSignal): Promise<ListedMount[]> {
  const out: ListedMount[] = [];
  for (const mountpoint of thfcMountpoints(await mountTable())) {
    signal?.throwIfAborted();
    try {
      const status: unknown = JSON.parse(
        await readFile(join(mountpoint, '.thfc', 'stats.json'), { encoding: 'utf8', signal }),
      );
      out.push(
        isMountStatus(status) ? { mountpoint, status } : { mountpoint, status: null, problem: 'no httpstorged status' },
      );
    } catch (e) {
      signal?.throwIfAborted();
      const code = (e as NodeJS.ErrnoException).code;
      out.push({
        mountpoint,
        status: null,
        problem:
          code === 'ENOTCONN'
            ? `stale: its daemon died; clear it with: httpstorged umount ${mountpoint}`
            : `status unreadable: ${code ?? (e as Error).message}`,
      });
    }
  }
  return out;
}

/** `httpstorged list` for people: one paragraph per mount, one line per image. */
export function formatMountList(mounts: readonly ListedMount[]): string {
  if (!mounts.length) return 'no httpstorged mounts\n';
  const lines: string[] = [];
  for (const m of mounts) {
    if (lines.length) lines.push('');
    if (!m.status) {
      lines.push(`${m.mountpoint}: ${m.problem}`);
      continue;
    }
    const s = m.status;
    const c = s.cache;
    lines.push(`${m.mountpoint}: daemon pid ${s.pid} since ${s.started}`);
    lines.push(
      c.dir
        ? `  cache  ${c.dir}: ${c.blocks} blocks, ${formatBytes(c.bytes)}${c.maxBytes ? ` of ${formatBytes(c.maxBytes)}` : ''}`
        : '  cache  none (RAM only)',
    );
    for (const i of s.images) {
      const pct = (i.localFraction * 100).toFixed(1);
      lines.push(
        `  image  ${i.name}  ${formatBytes(i.size)}  ${i.digest.slice(0, 19)}${i.pinned ? ' pinned' : ''}  local ${pct}%  ${i.index}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
