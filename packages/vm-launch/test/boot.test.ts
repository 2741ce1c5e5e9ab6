import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, UsageError } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BootOptions, runBoot } from '../src/boot.js';
import { probeKey } from '../src/kvm-probe.js';
import { packImage, script, tempDir, testIo } from './helpers.js';

/**
 * runBoot's orchestration with a fake qemu-system (a shell script that logs
 * its arguments and plays a guest) and the real qemu-img. Real guests boot
 * in test/vm-boot.test.ts.
 */
let dir: string;
let cleanup: () => Promise<void>;
let disk: string;
let state: string;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  disk = join(dir, 'disk.img');
  await writeFile(disk, Buffer.alloc(1024 * 1024, 1));
  state = join(dir, 'state');
});
afterEach(() => cleanup());

/** A fake qemu: logs argv, checks that its -drive file exists, then runs GUEST (sh). */
async function fakeQemu(guest: string) {
  const log = join(dir, 'qemu.log');
  const system = await script(
    join(dir, 'qemu-fake'),
    `if [ "$1" = --version ]; then echo "QEMU emulator version 0.0.1"; exit 0; fi
echo "$@" >> ${log}
for a in "$@"; do case "$a" in file=*) f=\${a#file=}; f=\${f%%,*}; [ -f "$f" ] || { echo "no drive $f" >&2; exit 9; } ;; esac; done
${guest}`,
  );
  return {
    tools: { system, img: 'qemu-img' },
    runs: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean),
  };
}

const boot = (o: Partial<BootOptions>, io: ReturnType<typeof testIo>) =>
  runBoot({ image: disk, stateDir: state, accel: 'tcg', ...o }, io);

describe('runBoot --dry-run', () => {
  it('prints the overlay and qemu commands and creates nothing', async () => {
    const io = testIo({ cwd: dir });
    const r = await boot({ dryRun: true, mem: 300, cpus: 2, serial: true }, io);
    expect(r.exitCode).toBe(0);
    const out = io.out();
    expect(out).toContain(`qemu-img create -q -f qcow2 -b ${disk} -F raw ${state}/run-DRYRUN/overlay.qcow2`);
    expect(out).toMatch(
      /^qemu-system-x86_64 -name thfc-disk .*-accel tcg .*-m 300 -smp 2 .*-drive file=\S+overlay\.qcow2,format=qcow2,if=virtio$/m,
    );
    await expect(stat(state)).rejects.toThrow(); // nothing created
  });

  it('an index: the httpstorged mount with the mount options passed through, and the unmount', async () => {
    const io = testIo({ cwd: dir });
    await boot(
      { image: 'http://m.example/pub/debian.idx', dryRun: true, mountArgs: ['--cache', '/c', '--offline'] },
      io,
    );
    const out = io.out();
    expect(out).toContain(`httpstorged ${state}/run-DRYRUN/mnt http://m.example/pub/debian.idx --cache /c --offline`);
    expect(out).toContain(`-b ${state}/run-DRYRUN/mnt/debian -F raw`);
    expect(out).toContain(`httpstorged umount ${state}/run-DRYRUN/mnt`);
  });

  it('--via auto serves the index over NBD where FUSE cannot mount (not root, or no /dev/fuse)', async () => {
    for (const host of [{ root: false }, { fuseDevice: join(dir, 'no-fuse') }]) {
      const io = testIo({ cwd: dir, ...host });
      await boot({ image: 'http://m.example/pub/debian.idx', dryRun: true, mountArgs: ['--cache', '/c'] }, io);
      const out = io.out();
      expect(out).toContain(`httpstorged nbd --socket ${state}/run-DRYRUN/nbd.sock http://m.example/pub/debian.idx`);
      expect(out).toContain('"reconnect-delay":60');
      expect(out).not.toContain('httpstorged umount');
    }
  });

  it('--via nbd is refused for an engine that reads the image as a file', async () => {
    await expect(
      boot({ image: 'http://m.example/pub/debian.idx', dryRun: true, via: 'nbd', engine: 'xen' }, testIo({ cwd: dir })),
    ).rejects.toThrow(/--via nbd needs qemu/);
  });

  it('boot-profile options become httpstorged flags, local paths made absolute', async () => {
    const io = testIo({ cwd: dir });
    await boot(
      {
        image: 'http://m.example/pub/debian.idx',
        dryRun: true,
        mountArgs: ['--readahead', '0'],
        profile: { record: 'boot.profile', prefetch: false, fill: true },
      },
      io,
    );
    expect(io.out()).toContain(
      `httpstorged ${state}/run-DRYRUN/mnt http://m.example/pub/debian.idx --readahead 0 --record-profile ${dir}/boot.profile --no-prefetch --fill`,
    );
  });

  it('a relative --state-dir is made absolute (qemu resolves the backing file from the overlay)', async () => {
    const io = testIo({ cwd: dir });
    await boot({ image: 'http://m.example/pub/debian.idx', dryRun: true, stateDir: 'rel-state' }, io);
    expect(io.out()).toContain(`-b ${dir}/rel-state/run-DRYRUN/mnt/debian -F raw`);
  });

  it('--snapshot drops the overlay for qemu -snapshot; --keep-overlay keeps it under overlays/', async () => {
    const snap = testIo({ cwd: dir });
    await boot({ dryRun: true, snapshot: true }, snap);
    expect(snap.out()).not.toContain('qemu-img');
    expect(snap.out()).toContain(`-drive file=${disk},format=raw,if=virtio,snapshot=on`);
    const keep = testIo({ cwd: dir });
    await boot({ dryRun: true, keepOverlay: true }, keep);
    expect(keep.out()).toMatch(/overlays\/disk-2026-01-02T03-04-05-000Z\.qcow2/);
    expect(keep.out()).not.toMatch(/^rm -f .*overlay/m);
  });
});

describe('runBoot refuses contradictions before doing anything', () => {
  it.each([
    [{ snapshot: true, keepOverlay: true }, UsageError, /choose one/],
    [{ append: 'x' }, UsageError, /--append needs --kernel/],
    [{ kernel: 'no-such-kernel' }, InputError, /no-such-kernel: no such file/],
    [{ engine: 'virtualbox', kernel: '/k' }, UsageError, /no direct kernel boot/],
    [{ engine: 'xen', snapshot: true }, UsageError, /--snapshot is qemu's/],
    [{ mem: 8 }, UsageError, /at least 16 MiB/],
    [{ image: 'debian' }, UsageError, /--catalog/],
    [{ profile: { record: 'p.profile' } }, UsageError, /--record-profile: \S+disk\.img is a disk file, not an index/],
    [{ profile: { prefetch: false, fill: true } }, UsageError, /--no-prefetch, --fill: .* only records and replays/],
    [
      { image: 'http://m/x.idx', profile: { record: 'no-dir/p.profile' } },
      InputError,
      /--record-profile no-dir\/p\.profile: no such directory/,
    ],
    [
      { image: 'http://m/x.idx', profile: { prefetch: 'none.profile' } },
      InputError,
      /--prefetch none\.profile: no such file/,
    ],
  ] as const)('%o', async (o, type, message) => {
    const p = boot({ dryRun: true, ...(o as Partial<BootOptions>) }, testIo({ cwd: dir }));
    await expect(p).rejects.toBeInstanceOf(type);
    await expect(p).rejects.toThrow(message);
  });
});

describe('--record-profile on a disk thfc-vm did not mount', () => {
  it('names the other httpstorged as the place to record it', async () => {
    // An httpstorged mount point shows MOUNTPOINT/NAME beside MOUNTPOINT/.thfc/stats.json.
    const mnt = join(dir, 'mnt');
    await mkdir(join(mnt, '.thfc'), { recursive: true });
    await writeFile(join(mnt, '.thfc/stats.json'), '{}');
    await writeFile(join(mnt, 'guest'), Buffer.alloc(4096));
    const p = boot({ image: join(mnt, 'guest'), profile: { record: 'p.profile' } }, testIo({ cwd: dir }));
    await expect(p).rejects.toBeInstanceOf(UsageError);
    await expect(p).rejects.toThrow(
      /is an already-mounted disk file.*Boot the index instead \(thfc-vm boot http:\/\/…\/guest\.idx --record-profile …\), or give --record-profile to the httpstorged that mounted it/,
    );
    await expect(stat(state)).rejects.toThrow(); // refused before anything was made
  });
});

describe('runBoot with a fake qemu', () => {
  it('a guest that powers off: exit 0, overlay made for the run and removed after, report written', async () => {
    const q = await fakeQemu('echo GUEST-UP; exit 0');
    const io = testIo({ cwd: dir, tools: q.tools });
    const report = join(dir, 'r.json');
    const r = await boot({ report }, io);
    expect(r).toMatchObject({ outcome: 'powered-off', exitCode: 0 });
    expect(io.out()).toBe('GUEST-UP\n');
    expect((await q.runs())[0]).toMatch(/-drive file=.*\/run-\w+\/overlay\.qcow2,format=qcow2/);
    expect(await readdir(state)).toEqual([]); // run dir gone
    const rep = JSON.parse(await readFile(report, 'utf8'));
    expect(rep).toMatchObject({
      outcome: 'powered-off',
      exitCode: 0,
      accel: 'tcg',
      source: 'file',
      cleanup: { clean: true },
    });
  });

  it('qemu failing: exit 6 and its last words', async () => {
    const q = await fakeQemu('echo "qemu-system-x86_64: -m 99999: cannot set up guest memory" >&2; exit 1');
    const io = testIo({ cwd: dir, tools: q.tools });
    const r = await boot({}, io);
    expect(r).toMatchObject({ outcome: 'failed', exitCode: 6 });
    expect(io.err()).toMatch(/qemu exited with status 1: qemu-system-x86_64: -m 99999: cannot set up guest memory/);
    expect(await readdir(state)).toEqual([]);
  });

  it('Ctrl-C: qemu stopped, exit 130, everything removed', async () => {
    const q = await fakeQemu('echo up; exec sleep 30');
    const ac = new AbortController();
    const io = testIo({ cwd: dir, tools: q.tools, signal: ac.signal });
    // testIo's stdout is a PassThrough (helpers.ts): readable here, writable to the code under test.
    (io.stdout as unknown as NodeJS.ReadableStream).on('data', () => ac.abort());
    const r = await boot({}, io);
    expect(r).toMatchObject({ outcome: 'interrupted', exitCode: 130 });
    expect(await readdir(state)).toEqual([]);
  });

  it('--keep-overlay keeps the overlay with the image as its backing file', async () => {
    const q = await fakeQemu('exit 0');
    const r = await boot({ keepOverlay: true }, testIo({ cwd: dir, tools: q.tools }));
    const kept = r.report.overlayKept as string;
    expect(kept).toMatch(/\/overlays\/disk-.*\.qcow2$/);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', kept]).toString());
    expect(info['backing-filename']).toBe(disk);
  });

  describe('KVM that fails at run time', () => {
    const kvmThenTcg = `case "$*" in *"-accel kvm"*) echo "KVM internal error. Suberror: 1" >&2; echo "RAX=0000 RBX=0000" >&2; exec sleep 30;; esac; echo TCG-GUEST; exit 0`;

    /** A /dev/kvm stand-in and a cached probe answer "KVM works" for the fake qemu's version. */
    async function kvmSaysYes() {
      const kvm = join(dir, 'kvm');
      await writeFile(kvm, '');
      await mkdir(state, { recursive: true });
      const key = probeKey('test-kernel', 'QEMU emulator version 0.0.1');
      await writeFile(
        join(state, 'kvm-probe.json'),
        JSON.stringify({ works: true, reason: 'probe ran', key, probedAt: 'x' }),
      );
      return kvm;
    }

    it('auto: one line, then the same guest under TCG; the probe cache learns', async () => {
      const q = await fakeQemu(kvmThenTcg);
      const kvm = await kvmSaysYes();
      const io = testIo({ cwd: dir, tools: q.tools, kvmDevice: kvm });
      const r = await boot({ accel: 'auto' }, io);
      expect(r).toMatchObject({ outcome: 'powered-off', exitCode: 0 });
      expect(r.report.kvmFallback).toBe('KVM internal error. Suberror: 1');
      expect(io.out()).toBe('TCG-GUEST\n');
      const lines = io.err().split('\n').filter(Boolean);
      expect(
        lines.filter((l) => /KVM failed at run time \(KVM internal error\. Suberror: 1\); retrying with TCG/.test(l)),
      ).toHaveLength(1);
      expect(io.err()).not.toContain('RAX='); // the register dump is not shown
      const runs = await q.runs();
      expect(runs.map((a) => /-accel (\w+)/.exec(a)?.[1])).toEqual(['kvm', 'tcg']);
      const cache = JSON.parse(await readFile(join(state, 'kvm-probe.json'), 'utf8'));
      expect(cache.works).toBe(false);
      expect(await readdir(state)).toEqual(['kvm-probe.json']);
    }, 30_000);

    it('forced --accel kvm: no retry, exit 6', async () => {
      const q = await fakeQemu(kvmThenTcg);
      const io = testIo({ cwd: dir, tools: q.tools });
      const r = await boot({ accel: 'kvm' }, io);
      expect(r).toMatchObject({ outcome: 'failed', exitCode: 6 });
      expect(io.err()).toMatch(/KVM failed \(KVM internal error\. Suberror: 1\); --no-kvm runs the guest under TCG/);
      expect((await q.runs()).length).toBe(1);
    }, 30_000);
  });
});

describe('boot profiles through a real httpstorged (fake qemu reading the disk)', () => {
  /** Reads its whole -drive (a fixed set of blocks, whatever the kernel's read-ahead), as a guest would. */
  const reader = 'sleep 0.5; cat "$f" > /dev/null && echo READ-OK';

  it('--record-profile writes the blocks read; --prefetch replays them at the next cold mount', async () => {
    const image = Buffer.concat([randomBytes(400_000), Buffer.alloc(200_000)]);
    const index = await packImage(dir, 'small', image);
    const q = await fakeQemu(reader);
    const first = testIo({ cwd: dir, tools: q.tools });
    const r1 = await boot(
      {
        image: index,
        snapshot: true,
        mountArgs: ['--cache', join(dir, 'cache1'), '--readahead', '0'],
        profile: { record: 'small.profile' },
        report: join(dir, 'r1.json'),
      },
      first,
    );
    expect(r1.exitCode, first.err()).toBe(0);
    expect(first.out()).toBe('READ-OK\n');
    // 400 000 random bytes: 7 blocks of 64 KiB; the zero blocks after them are never fetched, so never recorded.
    expect(r1.report.profile).toEqual({ recorded: join(dir, 'small.profile'), blocks: 7 });
    expect(first.err()).toMatch(/recorded a boot profile of 7 blocks to \S+small\.profile/);
    expect(JSON.parse(await readFile(join(dir, 'r1.json'), 'utf8')).profile.blocks).toBe(7);

    const second = testIo({ cwd: dir, tools: q.tools });
    const r2 = await boot(
      {
        image: index,
        snapshot: true,
        mountArgs: ['--cache', join(dir, 'cache2'), '--readahead', '0'],
        profile: { prefetch: 'small.profile' },
      },
      second,
    );
    expect(r2.exitCode, second.err()).toBe(0);
    expect(r2.report.mount?.prefetch).toMatchObject({ blocks: 7, fetched: 7, hit: 7, pending: 0, failed: 0 });
    expect(second.err()).toMatch(/boot profile of 7 blocks from \S+small\.profile: 7 hit, 0 fetched but unused/);
    expect(await readdir(state)).toEqual([]);
  }, 60_000);

  it('a recording httpstorged could not write is a cleanup problem: exit 5 with its reason', async () => {
    const image = randomBytes(200_000);
    await packImage(dir, 'tiny', image);
    const q = await fakeQemu(`${reader}; rm -rf ${dir}/out`); // the directory goes away during the boot
    await mkdir(join(dir, 'out'));
    const io = testIo({ cwd: dir, tools: q.tools });
    const r = await boot(
      {
        image: join(dir, 'store/tiny.idx'),
        snapshot: true,
        mountArgs: ['--cache', join(dir, 'cache3')],
        profile: { record: 'out/tiny.profile' },
      },
      io,
    );
    expect(r.exitCode).toBe(5);
    expect(r.report.cleanup.problems.join('\n')).toMatch(/httpstorged wrote no boot profile to \S+out\/tiny\.profile/);
  }, 60_000);
});
