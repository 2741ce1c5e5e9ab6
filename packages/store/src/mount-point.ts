// Mount points from Node alone, without FUSE: httpstorged and thfc-vm both manage mounts through here.
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { fsError, InputError, UsageError } from '@thfc/format';

const execFileP = promisify(execFile);

/** Mount points from /proc/self/mountinfo (field 5, octal escapes decoded), with their fs type. */
/** One line of mountinfo: where, what file system, from what source, and the device (major:minor) it has. */
export interface MountEntry {
  readonly mountpoint: string;
  readonly fstype: string;
  readonly source: string;
  readonly device: string;
}

export async function mountTable(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** The pure half of mountTable: the text of a mountinfo file, one mount per line. */
export function parseMountInfo(text: string): MountEntry[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const dash = fields.indexOf('-');
      const decodeOctal = (s: string) =>
        s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
      return {
        mountpoint: decodeOctal(fields[4] ?? ''),
        fstype: fields[dash + 1] ?? '',
        source: decodeOctal(fields[dash + 2] ?? ''),
        device: fields[2] ?? '',
      };
    });
}

export async function isMounted(path: string): Promise<boolean> {
  const abs = resolve(path);
  return (await mountTable()).some((m) => m.mountpoint === abs);
}

/** Detaches a FUSE mount even if it is busy or its daemon is gone (`fusermount -u -z`); each try is bounded (10 s). */
export async function lazyUnmount(path: string): Promise<void> {
  await execFileP('fusermount', ['-u', '-z', resolve(path)], { timeout: 10_000 }).catch(async () => {
    await execFileP('umount', ['-l', resolve(path)], { timeout: 10_000 });
  });
}

/** The device (major:minor) of the mount on top at `path`, if there is one: it tells one mount there from a later one. */
export async function mountDevice(path: string): Promise<string | undefined> {
  const abs = resolve(path);
  return (await mountTable()).findLast((m) => m.mountpoint === abs)?.device;
}

/**
 * Unmounts a FUSE mount only if nothing uses it (`fusermount -u`, no -z): the
 * kernel refuses with EBUSY while a file under it is open, mapped or backs a
 * loop device, and then nothing has changed. With `device`, only the mount of
 * that device: once it was detached, another mounted at the same path since
 * is not touched (`not-mounted`). Bounded (10 s).
 */
export async function unmountIfIdle(path: string, device?: string): Promise<'unmounted' | 'busy' | 'not-mounted'> {
  const abs = resolve(path);
  const top = await mountDevice(abs);
  if (top === undefined || (device !== undefined && top !== device)) return 'not-mounted';
  try {
    // Without fusermount (no FUSE userland tools), root's umount without -l refuses a busy mount the same way.
    await execFileP('fusermount', ['-u', abs], { timeout: 10_000 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      return execFileP('umount', [abs], { timeout: 10_000 });
    });
    return 'unmounted';
  } catch (e) {
    const why = `${(e as { stderr?: string }).stderr ?? ''} ${(e as Error).message}`;
    if (/busy/i.test(why)) return 'busy';
    if (!(await isMounted(abs))) return 'not-mounted';
    throw new UsageError(`cannot unmount ${abs}: ${why.trim().split('\n')[0]}`);
  }
}

/**
 * Checks MOUNTPOINT before mounting. A stale mount left by a crashed daemon
 * (the kernel answers ENOTCONN) is cleared; a live mount is refused.
 * Resolves to true when a stale mount was cleared.
 */
export async function prepareMountpoint(path: string): Promise<boolean> {
  const abs = resolve(path);
  try {
    const st = await stat(abs);
    if (!st.isDirectory()) throw new UsageError(`mountpoint ${path} is not a directory`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`mountpoint ${path} does not exist (create it with: mkdir -p ${path})`);
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') {
      await lazyUnmount(abs);
      return true;
    }
    throw fsError(e, `mountpoint ${path}`);
  }
  if (await isMounted(abs)) {
    // A stat can be answered from the kernel's attribute cache for a second after the daemon died; reading the
    // directory always asks the daemon, so it tells a dead mount from one in use.
    const dead = await readdir(abs).then(
      () => false,
      (e: NodeJS.ErrnoException) => e.code === 'ENOTCONN' || e.code === 'ECONNABORTED',
    );
    if (dead) {
      await lazyUnmount(abs);
      return true;
    }
    throw new UsageError(
      `mountpoint ${path} is in use (already mounted); unmount it first: httpstorged umount ${path}`,
    );
  }
  // libfuse refuses a non-empty directory ("fuse failed" said nothing of why), and the option that would let it
  // (`nonempty`) is one fuse-native does not pass: the mount would hide what is there anyway.
  const entries = await readdir(abs).catch((e: unknown) => {
    throw fsError(e, `mountpoint ${path}`);
  });
  if (entries.length > 0) {
    throw new UsageError(
      `mountpoint ${path} is not empty (${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}, such as ${entries[0]}); mount on an empty directory, or move what is there out of it`,
    );
  }
  return false;
}
