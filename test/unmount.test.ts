import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './support/daemon.js';
import { makeExt4Image, makeImage } from './support/images.js';
import { FileHolder, isMounted, readRange, TestMount } from './support/mounts.js';
import { BIN, execFileP, node, run, sha256, tempDir } from './support/processes.js';

/**
 * Unmounting never pulls a disk from under its user (issue 13 §1), through
 * real mounts: an ext4 file system loop-mounted on the image, a descriptor
 * held by another process, SIGTERM, SIGINT and SIGHUP sent to the daemon.
 */
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
let work: string;
let cleanupWork: () => Promise<void>;
let store: string;
let small: Buffer;
const mounts: TestMount[] = [];
const holders: FileHolder[] = [];
let n = 0;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-unmount-'));
  store = join(work, 'store');
  const img = join(work, 'small.img');
  await makeImage(img, [
    ['text', 4],
    ['zero', 2],
    ['random', 2],
  ]);
  small = await readFile(img);
  const tree = join(work, 'tree');
  await mkdir(join(tree, 'd'), { recursive: true });
  await writeFile(join(tree, 'd', 'file.txt'), 'a file on an ext4 file system on a thfc image\n'.repeat(5000));
  await makeExt4Image(join(work, 'fs.img'), tree, 16);
  for (const i of [img, join(work, 'fs.img')]) {
    const r = await node(BIN.pack, ['pack', i, '--store', store]);
    expect(r.code, r.stderr).toBe(0);
  }
}, 120_000);

afterEach(async () => {
  for (const h of holders.splice(0)) await h.close();
  for (const m of mounts.splice(0)) await m.stop();
});

afterAll(async () => {
  await cleanupWork?.();
});

async function mount(name: string): Promise<{ mnt: string; mount: TestMount; pid: number; log: string }> {
  const i = ++n;
  const mnt = join(work, `mnt${i}`);
  await mkdir(mnt);
  const log = join(work, `log${i}.txt`);
  const mount = await mountAt(mnt, log, name);
  return { mnt, mount, pid: (await mount.stats()).pid, log };
}

/** Mounts store's `name` image at mnt (which exists) over the shared cache, logging to log. */
async function mountAt(mnt: string, log: string, name: string): Promise<TestMount> {
  const { mount, result } = await TestMount.start(mnt, log, [
    join(store, `${name}.idx`),
    '--cache',
    join(work, 'cache'),
  ]);
  mounts.push(mount);
  expect(result.code, result.stderr).toBe(0);
  return mount;
}

async function hold(path: string): Promise<FileHolder> {
  const h = await FileHolder.open(path);
  holders.push(h);
  return h;
}

/** Whether the process runs (a zombie does not). */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
  return stat !== '' && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

const umount = (mnt: string, ...flags: string[]) =>
  node(BIN.httpstorged, ['umount', ...flags, mnt], { timeoutMs: 30_000 });

describe('httpstorged umount', () => {
  it.skipIf(!isRoot)(
    'refuses a mount whose image is loop-mounted as ext4 (75), names the loop device, and changes nothing',
    async () => {
      const { mnt, mount: m, pid } = await mount('fs');
      const ext4 = join(work, 'ext4');
      await mkdir(ext4, { recursive: true });
      const loop = (await execFileP('losetup', ['-r', '-f', '--show', join(mnt, 'fs')])).stdout.trim();
      try {
        await execFileP('mount', ['-o', 'ro', loop, ext4]);
        const want = await sha256(join(work, 'tree', 'd', 'file.txt'));
        expect(await sha256(join(ext4, 'd', 'file.txt'))).toBe(want);

        const r = await umount(mnt);
        expect(r.code, r.stderr).toBe(75);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain(`${loop} (mounted at ${ext4}) reads fs`);
        expect(r.stderr).toMatch(/umount --lazy/);
        // Nothing changed: still mounted, the daemon serving, the file system on top readable.
        expect(await isMounted(mnt)).toBe(true);
        expect(await running(pid)).toBe(true);
        expect((await m.stats()).pid).toBe(pid);
        await execFileP('dd', [`if=${join(ext4, 'd', 'file.txt')}`, 'iflag=nocache', 'count=0', 'status=none']);
        expect(await sha256(join(ext4, 'd', 'file.txt'))).toBe(want);

        await execFileP('umount', [ext4]);
        const still = await umount(mnt);
        expect(still.code).toBe(75);
        expect(still.stderr).toContain(`${loop} reads fs`);
        await execFileP('losetup', ['-d', loop]);
        await waitUntil(undefined, 'the loop device to let go', async () => {
          const b = await readFile(`/sys/block/${loop.replace('/dev/', '')}/loop/backing_file`, 'utf8').catch(() => '');
          return b === '';
        });
        const ok = await umount(mnt);
        expect(ok.code, ok.stderr).toBe(0);
        // Returned only once the mount is gone and the daemon has exited.
        expect(await isMounted(mnt)).toBe(false);
        expect(await running(pid)).toBe(false);
      } finally {
        await run('umount', ['-l', ext4]);
        await run('losetup', ['-d', loop]);
      }
    },
    90_000,
  );

  it('refuses a mount with a held descriptor, naming the process; the descriptor keeps reading', async () => {
    const { mnt, pid } = await mount('small');
    const h = await hold(join(mnt, 'small'));
    const r = await umount(mnt);
    expect(r.code, r.stderr).toBe(75);
    expect(r.stderr).toContain(`pid ${h.pid} (node) has small open`);
    expect(await isMounted(mnt)).toBe(true);
    expect(await running(pid)).toBe(true);
    const got = await h.read(6 * MiB + 12345, 4096);
    expect(got).toEqual({ ok: true, bytes: small.subarray(6 * MiB + 12345, 6 * MiB + 12345 + 4096) });
    await h.close();
    const ok = await umount(mnt);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await running(pid)).toBe(false);
  }, 60_000);

  it('--lazy detaches a busy mount; the daemon serves the held descriptor until it closes, then exits', async () => {
    const { mnt, pid, mount: m } = await mount('small');
    const h = await hold(join(mnt, 'small'));
    const r = await umount(mnt, '--lazy');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/detached .* lazily/);
    expect(await isMounted(mnt)).toBe(false);
    await waitUntil(undefined, 'the daemon to say it serves on', async () => /still has users/.test(await m.logText()));
    expect(await h.read(7 * MiB, 4096)).toEqual({ ok: true, bytes: small.subarray(7 * MiB, 7 * MiB + 4096) });
    expect(await running(pid)).toBe(true);
    // A new mount at the same path meanwhile is not the old daemon's to unmount.
    await mountAt(mnt, join(work, 'again.txt'), 'small');
    await new Promise((r) => setTimeout(r, 2500)); // the old daemon tries again every second
    expect(await isMounted(mnt)).toBe(true);
    await h.close();
    await waitUntil(undefined, 'the daemon to exit after its last user', async () => !(await running(pid)), 10_000);
    expect(await m.logText()).toMatch(/detached lazily and still has users[\s\S]*unmounted/);
    expect(await isMounted(mnt)).toBe(true);
    expect((await readRange(join(mnt, 'small'), 0, 4096)).ok).toBe(true);
  }, 60_000);
});

describe('httpstorged signals', () => {
  it('SIGTERM while the image is held keeps serving until the last user is gone, then unmounts and exits', async () => {
    const { mnt, pid, mount: m } = await mount('small');
    const h = await hold(join(mnt, 'small'));
    process.kill(pid, 'SIGTERM');
    await waitUntil(undefined, 'the busy log line', async () => /is in use \(pid/.test(await m.logText()));
    expect(await m.logText()).toContain(`SIGTERM: ${mnt} is in use (pid ${h.pid} (node) has small open); serving`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await isMounted(mnt)).toBe(true);
    expect(await h.read(5 * MiB, 4096)).toEqual({ ok: true, bytes: small.subarray(5 * MiB, 5 * MiB + 4096) });
    await h.close();
    await waitUntil(undefined, 'the daemon to exit', async () => !(await running(pid)), 10_000);
    expect(await isMounted(mnt)).toBe(false);
    const log = await m.logText();
    expect(log.match(/is in use/g)).toHaveLength(1); // one line a minute, not one per try
    expect(log).toMatch(/unmounted/);
  }, 60_000);

  it('SIGINT unmounts an idle mount; a second SIGINT detaches a busy one at once', async () => {
    const idle = await mount('small');
    process.kill(idle.pid, 'SIGINT');
    await waitUntil(undefined, 'the daemon to exit', async () => !(await running(idle.pid)), 10_000);
    expect(await isMounted(idle.mnt)).toBe(false);

    const { mnt, pid, mount: m } = await mount('small');
    const h = await hold(join(mnt, 'small'));
    process.kill(pid, 'SIGINT');
    await waitUntil(undefined, 'the busy log line', async () => /is in use/.test(await m.logText()));
    process.kill(pid, 'SIGINT');
    await waitUntil(undefined, 'the daemon to exit', async () => !(await running(pid)), 10_000);
    expect(await isMounted(mnt)).toBe(false);
    expect(await m.logText()).toMatch(/SIGINT again: detaching/);
    expect((await h.read(0, 4096)).ok).toBe(false);
  }, 60_000);

  it('a second SIGTERM after a lazy detach stops the old daemon without touching a newer mount at the path', async () => {
    const { mnt, pid, mount: m } = await mount('small');
    const h = await hold(join(mnt, 'small'));
    expect((await umount(mnt, '--lazy')).code).toBe(0);
    await waitUntil(undefined, 'the daemon to say it serves on', async () => /still has users/.test(await m.logText()));
    await mountAt(mnt, join(work, 'again2.txt'), 'small');
    process.kill(pid, 'SIGTERM');
    await waitUntil(undefined, 'the old daemon to exit', async () => !(await running(pid)), 10_000);
    expect((await h.read(0, 4096)).ok).toBe(false); // its user was cut off, as a second signal says
    expect(await isMounted(mnt)).toBe(true);
    expect((await readRange(join(mnt, 'small'), 0, 4096)).ok).toBe(true);
  }, 60_000);

  it('SIGHUP after a logrotate-style rename writes to a new log file and leaves the mount alone', async () => {
    const { mnt, pid, log, mount: m } = await mount('small');
    await rename(log, `${log}.1`);
    process.kill(pid, 'SIGHUP');
    await waitUntil(undefined, 'the new log file', async () => /reopened the log file/.test(await m.logText()));
    expect(await isMounted(mnt)).toBe(true);
    expect(await running(pid)).toBe(true);
    const r = await readRange(join(mnt, 'small'), MiB, 4096);
    expect(r).toEqual({ ok: true, bytes: small.subarray(MiB, MiB + 4096) });
    const u = await umount(mnt);
    expect(u.code, u.stderr).toBe(0);
    expect(await running(pid)).toBe(false); // umount returned only once the daemon had exited
    expect(await m.logText()).toMatch(/unmounted/);
    expect(await readFile(`${log}.1`, 'utf8')).not.toMatch(/unmounted|reopened/);
  }, 60_000);
});
