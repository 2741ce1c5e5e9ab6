import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeHolders, findHolders, isUnder, mappedPaths } from '../src/mount-holders.js';
import { tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const MNT = '/srv/thfc';

/** A /proc and /sys of a few processes and loop devices, as the kernel shows them. */
async function fakeSystem(): Promise<{ proc: string; sys: string }> {
  const t = await tempDir('thfc-holders-');
  cleanups.push(t.cleanup);
  const proc = join(t.dir, 'proc');
  const sys = join(t.dir, 'sys');
  const pid = async (n: number, comm: string, fds: string[], extra: { maps?: string; cwd?: string } = {}) => {
    const d = join(proc, String(n));
    await mkdir(join(d, 'fd'), { recursive: true });
    await writeFile(join(d, 'comm'), `${comm}\n`);
    for (const [i, target] of fds.entries()) await symlink(target, join(d, 'fd', String(i)));
    await writeFile(join(d, 'maps'), extra.maps ?? '');
    await symlink(extra.cwd ?? '/', join(d, 'cwd'));
    await symlink('/', join(d, 'root'));
  };
  await pid(100, 'qemu-system-x86', ['/dev/null', `${MNT}/disk`, `${MNT}/disk`, 'socket:[1]']);
  await pid(101, 'bash', ['/dev/pts/0'], { cwd: `${MNT}` });
  await pid(102, 'mapper', [], {
    maps: `7f00-7f10 r--s 00000000 00:35 2 ${MNT}/with space (deleted)\n7f10-7f20 r-xp 00000000 08:01 9 /usr/lib/libc.so.6\n`,
  });
  await pid(103, 'other', ['/srv/thfc-other/disk']);
  await mkdir(join(proc, 'self'), { recursive: true });
  await writeFile(
    join(proc, 'self', 'mountinfo'),
    `40 1 7:0 / /mnt/ext4 ro,relatime - ext4 /dev/loop0 ro\n41 1 0:50 / ${MNT} rw - fuse.thfc thfc rw\n`,
  );
  for (const [dev, backing] of [
    ['loop0', `${MNT}/disk\n`],
    ['loop1', '/var/lib/other.img\n'],
    ['loop2', `${MNT}/disk\n`],
  ] as const) {
    await mkdir(join(sys, 'block', dev, 'loop'), { recursive: true });
    await writeFile(join(sys, 'block', dev, 'loop', 'backing_file'), backing);
  }
  await mkdir(join(sys, 'block', 'loop3'), { recursive: true }); // unbound: no loop/ directory
  await mkdir(join(sys, 'block', 'sda'), { recursive: true });
  return { proc, sys };
}

describe('findHolders', () => {
  it('finds open, mapped and working-directory users and loop devices under the mount, once each', async () => {
    const { proc, sys } = await fakeSystem();
    const holders = await findHolders(MNT, { proc, sys, ignorePids: [] });
    expect(holders).toEqual([
      { kind: 'process', pid: 100, command: 'qemu-system-x86', path: `${MNT}/disk`, how: 'open' },
      { kind: 'process', pid: 101, command: 'bash', path: MNT, how: 'cwd' },
      { kind: 'process', pid: 102, command: 'mapper', path: `${MNT}/with space`, how: 'mapped' },
      { kind: 'loop', device: '/dev/loop0', path: `${MNT}/disk`, mountedAt: ['/mnt/ext4'] },
      { kind: 'loop', device: '/dev/loop2', path: `${MNT}/disk`, mountedAt: [] },
    ]);
    expect(describeHolders(holders, MNT, 4)).toBe(
      'pid 100 (qemu-system-x86) has disk open; pid 101 (bash) has its working directory in it; pid 102 (mapper) maps with space; /dev/loop0 (mounted at /mnt/ext4) reads disk; 1 more',
    );
  });

  it('leaves out the pids it is told to, and finds nothing where nothing is', async () => {
    const { proc, sys } = await fakeSystem();
    expect((await findHolders(MNT, { proc, sys, ignorePids: [100, 101, 102] })).map((h) => h.kind)).toEqual([
      'loop',
      'loop',
    ]);
    expect(await findHolders('/nowhere', { proc, sys })).toEqual([]);
    expect(await findHolders(MNT, { proc: '/no/proc', sys: '/no/sys' })).toEqual([]);
  });
});

describe('isUnder and mappedPaths', () => {
  it('a path is under the mount point only at a path boundary', () => {
    expect(isUnder('/srv/thfc', MNT)).toBe(true);
    expect(isUnder('/srv/thfc/disk', MNT)).toBe(true);
    expect(isUnder('/srv/thfc-other/disk', MNT)).toBe(false);
    expect(isUnder('/srv', MNT)).toBe(false);
  });

  it('takes the path field of maps lines, spaces kept, anonymous mappings skipped', () => {
    expect(
      mappedPaths(
        '55-56 r--p 00000000 08:01 3 /usr/bin/a b\n57-58 rw-p 00000000 00:00 0 \n59-5a rw-p 0 00:00 0 [heap]\n',
      ),
    ).toEqual(['/usr/bin/a b']);
  });
});
