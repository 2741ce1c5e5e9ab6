import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { InputError, UsageError } from '@thfc/format';
import { tempDir } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { isMounted, mountTable, parseMountInfo, prepareMountpoint } from '../src/mount-point.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-mount-point-');
  cleanups.push(t.cleanup);
  return t.dir;
}

// Lines as the kernel writes them (proc(5)): optional fields before the `-`, spaces in paths as \040.
const MOUNTINFO = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 0:25 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/l,upperdir=/u',
  '95 27 0:52 / /mnt/my\\040images rw,nosuid,nodev,relatime shared:60 master:3 - fuse httpstorged rw,user_id=0,group_id=0',
  '96 27 0:53 / /mnt/back\\134slash\\011tab rw - fuse.sshfs host:/x rw',
  '',
].join('\n');

describe('parseMountInfo', () => {
  it('takes field 5 as the mount point (octal escapes decoded), field 3 as the device, and the fs type and source after the dash', () => {
    expect(parseMountInfo(MOUNTINFO)).toEqual([
      { mountpoint: '/proc', fstype: 'proc', source: 'proc', device: '0:21' },
      { mountpoint: '/', fstype: 'overlay', source: 'overlay', device: '0:25' },
      { mountpoint: '/mnt/my images', fstype: 'fuse', source: 'httpstorged', device: '0:52' },
      { mountpoint: '/mnt/back\\slash\ttab', fstype: 'fuse.sshfs', source: 'host:/x', device: '0:53' },
    ]);
  });

  it('an empty table is empty', () => {
    expect(parseMountInfo('')).toEqual([]);
  });
});

describe('mountTable and isMounted (this machine, read-only)', () => {
  it('lists the root file system', async () => {
    const table = await mountTable();
    expect(table.some((m) => m.mountpoint === '/')).toBe(true);
    for (const m of table) {
      expect(m.mountpoint.startsWith('/')).toBe(true);
      expect(m.fstype).not.toBe('');
    }
  });

  it('a mount point is mounted, a plain directory is not; relative paths are resolved', async () => {
    expect(await isMounted('/')).toBe(true);
    const d = await dir();
    expect(await isMounted(d)).toBe(false);
    expect(await isMounted(relative(process.cwd(), '/'))).toBe(true);
    expect(await isMounted('/proc')).toBe(true);
    expect(await isMounted('/proc/self')).toBe(false);
    expect(await isMounted('/no/such/dir')).toBe(false);
  });
});

describe('prepareMountpoint', () => {
  it('an empty plain directory is ready: nothing to clear', async () => {
    expect(await prepareMountpoint(await dir())).toBe(false);
  });

  it('a missing directory is InputError with the command that makes it', async () => {
    const path = join(await dir(), 'mnt');
    const e = await prepareMountpoint(path).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toBe(`mountpoint ${path} does not exist (create it with: mkdir -p ${path})`);
  });

  it('a file is UsageError: not a directory', async () => {
    const path = join(await dir(), 'file');
    await writeFile(path, 'x');
    const e = await prepareMountpoint(path).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toBe(`mountpoint ${path} is not a directory`);
  });

  it('a path through a file is UsageError, not a raw errno error', async () => {
    const d = await dir();
    await writeFile(join(d, 'file'), 'x');
    const path = join(d, 'file', 'mnt');
    const e = await prepareMountpoint(path).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toBe(`mountpoint ${path}: a parent is not a directory`);
  });

  it('a directory something is already mounted on is refused (in use)', async () => {
    const e = await prepareMountpoint('/').catch((e: unknown) => e);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toBe(
      'mountpoint / is in use (already mounted); unmount it first: httpstorged umount /',
    );
  });
});
