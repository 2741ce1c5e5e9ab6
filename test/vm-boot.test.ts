import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './support/daemon.js';
import { BIN, node, ROOT, sha256, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';
import {
  BOOT_TIMEOUT_MS,
  expectNothingLeft,
  type GuestStore,
  guestBootArgs,
  guestStore,
  qemuPid,
  runVm,
  startVm,
  stopLeftovers,
  VM,
} from './support/vm.js';

/**
 * thfc-vm end to end (slow: every test boots a real Debian kernel under qemu).
 * The test guest is built from Debian packages (test/support/guest-image.mjs),
 * packed, served by a real HTTP server on loopback and mounted by httpstorged
 * through `thfc-vm boot`; its init reads /etc/thfc-release from its own root
 * disk and prints it. Every run must leave no mount, overlay, run directory,
 * qemu or httpstorged behind.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let g: GuestStore;
let server: StaticServer;
let state: string;
let kvm: { works: boolean; reason: string; key: string };
/** Preloaded into thfc-vm (and the httpstorged it starts): loading fuse-native fails, as where libfuse is absent. */
const HIDE_FUSE = join(ROOT, 'test/support/hide-fuse.cjs');

const bootArgs = () => guestBootArgs(g);

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-vm-e2e-'));
  g = await guestStore(work);
  server = await new StaticServer(g.store).start();
  state = join(work, 'state');
  const probe = await node(VM.cli, ['--state-dir', state, 'probe', '--json'], { timeoutMs: 60_000 });
  kvm = JSON.parse(probe.stdout);
}, 600_000);

afterAll(async () => {
  if (work) await stopLeftovers(work);
  await server?.kill();
  await cleanupWork?.();
});

describe('thfc-vm boot (slow: real guests)', () => {
  it(
    'boots from the HTTP mount under TCG: marker with the root file, bytes fetched < image, clean teardown',
    async () => {
      const report = join(work, 'tcg.json');
      const r = await runVm([
        '--state-dir',
        state,
        'boot',
        `${server.url}guest.idx`,
        '--cache',
        join(work, 'cache-tcg'),
        '--accel',
        'tcg',
        '--report',
        report,
        ...bootArgs(),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(g.guest.markerLine);
      expect(r.stdout).toContain('THFC-GUEST-WROTE ok');
      const rep = JSON.parse(await readFile(report, 'utf8'));
      expect(rep).toMatchObject({ outcome: 'powered-off', exitCode: 0, accel: 'tcg', source: 'index' });
      expect(rep.mount.size).toBe(g.guest.diskBytes);
      expect(rep.mount.bytesDownloaded).toBeGreaterThan(0);
      expect(rep.mount.bytesDownloaded).toBeLessThan(g.guest.diskBytes / 4);
      expect(rep.mount.readErrors).toBe(0);
      expect(r.stderr).toMatch(/guest: fetched [\d.]+ MiB \(\d+ blocks\) for [\d.]+ MiB read by the guest/);
      expect(server.paths.some((p) => p.includes('/blocks/'))).toBe(true);
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    '--via nbd with FUSE hidden: boots from the NBD export under TCG, no mount at all, the export counted',
    async () => {
      const report = join(work, 'nbd.json');
      const r = await runVm(
        [
          '--state-dir',
          state,
          'boot',
          `${server.url}guest.idx`,
          '--via',
          'nbd',
          '--cache',
          join(work, 'cache-nbd'),
          '--accel',
          'tcg',
          '--report',
          report,
          ...bootArgs(),
        ],
        { env: { NODE_OPTIONS: `--require ${HIDE_FUSE}` } },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(g.guest.markerLine);
      expect(r.stdout).toContain('THFC-GUEST-WROTE ok');
      expect(r.stderr).toContain('image via nbd (asked for)');
      const rep = JSON.parse(await readFile(report, 'utf8'));
      expect(rep).toMatchObject({ outcome: 'powered-off', exitCode: 0, via: 'nbd' });
      expect(rep.mount.size).toBe(g.guest.diskBytes);
      expect(rep.mount.bytesDownloaded).toBeGreaterThan(0);
      expect(rep.mount.bytesDownloaded).toBeLessThan(g.guest.diskBytes / 4);
      expect(rep.mount.readErrors).toBe(0);
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    '--via nbd: httpstorged killed with SIGKILL mid-boot and started again on the same socket and cache; the guest reaches its marker',
    async () => {
      // A slow mirror, one request at a time: the guest's disk reads take seconds, and the kill lands among them.
      server.fault = (path) => (path.includes('/blocks/') ? { kind: 'delay', ms: 40 } : undefined);
      const cache = join(work, 'cache-nbd-kill');
      const mirrorArgs = ['--cache', cache, '--connections', '1', '--readahead', '0', '--no-prefetch'];
      const vm = startVm(
        [
          '--state-dir',
          state,
          'boot',
          `${server.url}guest.idx`,
          '--via',
          'nbd',
          ...mirrorArgs,
          '--accel',
          'tcg',
          ...bootArgs(),
        ],
        { env: { NODE_OPTIONS: `--require ${HIDE_FUSE}` } },
      );
      let restarted: number | undefined;
      try {
        await vm.waitFor('image via nbd');
        const runs = async () => (await readdir(state)).filter((e) => e.startsWith('run-'));
        let socket = '';
        await waitUntil(undefined, 'the NBD socket', async () => {
          const run = (await runs())[0];
          socket = run ? join(state, run, 'nbd.sock') : '';
          return (
            !!run &&
            (await stat(socket).then(
              (st) => st.isSocket(),
              () => false,
            ))
          );
        });
        const stats = async () => JSON.parse((await node(BIN.httpstorged, ['stats', socket, '--json'])).stdout);
        // Mid-boot: the guest has read some of its disk, not all of it.
        await waitUntil(
          undefined,
          'the guest reading its disk',
          async () => (await stats()).images[0].reads >= 20,
          60_000,
        );
        const first = await stats();
        expect(vm.output().stdout).not.toContain(g.guest.markerLine);
        process.kill(first.pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 500));
        const again = await node(BIN.httpstorged, [
          'nbd',
          '--socket',
          socket,
          `${server.url}guest.idx`,
          ...mirrorArgs,
          '--log',
          join(work, 'nbd-restarted.log'),
        ]);
        expect(again.code, again.stderr).toBe(0);
        restarted = Number(/daemon pid (\d+)/.exec(again.stdout)?.[1]);
        const r = await vm.done;
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain(g.guest.markerLine);
        expect(r.stdout).not.toMatch(/a read failed|THFC-GUEST-FAILED|I\/O error/);
      } finally {
        server.fault = () => undefined;
        vm.child.kill('SIGINT');
        if (restarted) process.kill(restarted, 'SIGTERM');
        await vm.done;
      }
      // SIGTERM lets the restarted daemon finish with its last connection first: on a loaded machine that took
      // over the half second below. Its exit is waited for (bounded), then nothing may be left.
      const pid = restarted;
      if (pid) await waitUntil(undefined, 'the restarted daemon to exit', async () => !processExists(pid));
      await new Promise((r) => setTimeout(r, 500));
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    'boots with KVM where the probe says KVM runs guests',
    async (ctx) => {
      if (!kvm.works) ctx.skip(`KVM does not run guests here: ${kvm.reason}`);
      const r = await runVm([
        '--state-dir',
        state,
        'boot',
        `${server.url}guest.idx`,
        '--cache',
        join(work, 'cache-kvm'),
        '--accel',
        'kvm',
        ...bootArgs(),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(g.guest.markerLine);
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    'a catalog name: kernel, initrd and boot options come from the catalog beside the index (--snapshot)',
    async () => {
      const r = await runVm([
        '--state-dir',
        state,
        'boot',
        'guest',
        '--catalog',
        server.url,
        '--cache',
        join(work, 'cache-cat'),
        '--no-kvm',
        '--snapshot',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(g.guest.markerLine);
      expect(server.paths).toContain('/boot/vmlinux');
      expect(server.paths).toContain('/catalog.json');
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    'a local disk file: the guest writes (to the overlay) and the image is byte-for-byte untouched',
    async () => {
      const before = await sha256(g.guest.disk);
      const r = await runVm(['--state-dir', state, 'boot', g.guest.disk, '--no-kvm', ...bootArgs()]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('THFC-GUEST-WROTE ok');
      expect(await sha256(g.guest.disk)).toBe(before);
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    'Ctrl-C during the boot: qemu stopped, exit 130, nothing left',
    async () => {
      const vm = startVm([
        '--state-dir',
        state,
        'boot',
        `${server.url}guest.idx`,
        '--cache',
        join(work, 'cache-int'),
        '--no-kvm',
        ...bootArgs(),
      ]);
      await vm.waitFor('thfc-vm: accelerator');
      await new Promise((r) => setTimeout(r, 1_000));
      vm.child.kill('SIGINT');
      const r = await vm.done;
      expect(r.code, r.stderr).toBe(130);
      expect(r.stdout).not.toContain(g.guest.markerLine);
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    'qemu crashing: exit 6 saying how it died, nothing left',
    async () => {
      const vm = startVm([
        '--state-dir',
        state,
        'boot',
        `${server.url}guest.idx`,
        '--cache',
        join(work, 'cache-crash'),
        '--no-kvm',
        ...bootArgs(),
      ]);
      await vm.waitFor('thfc-vm: accelerator');
      let pid: number | undefined;
      for (let i = 0; i < 100 && !pid; i++) {
        pid = await qemuPid(state);
        if (!pid) await new Promise((r) => setTimeout(r, 50));
      }
      expect(pid).toBeDefined();
      process.kill(pid as number, 'SIGKILL');
      const r = await vm.done;
      expect(r.code, r.stderr).toBe(6);
      expect(r.stderr).toMatch(/thfc-vm: qemu died of SIGKILL/);
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );

  it(
    'KVM failing at run time (probe cache forged to "works"): one line, then the same boot under TCG',
    async (ctx) => {
      if (!kvm.key) ctx.skip(`no /dev/kvm to pretend with: ${kvm.reason}`);
      const own = join(work, 'state-forged');
      await mkdir(own, { recursive: true });
      await writeFile(
        join(own, 'kvm-probe.json'),
        JSON.stringify({ works: true, reason: 'forged by the test', key: kvm.key, probedAt: 'test' }),
      );
      const r = await runVm(['--state-dir', own, 'boot', g.guest.disk, ...bootArgs()]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(g.guest.markerLine);
      const fallback = r.stderr.split('\n').filter((l) => l.includes('KVM failed at run time'));
      if (!kvm.works) {
        expect(fallback).toHaveLength(1);
        expect(fallback[0]).toMatch(/^thfc-vm: KVM failed at run time \(.+\); retrying with TCG$/);
        expect(r.stderr).not.toMatch(/^RAX=/m);
        expect(JSON.parse(await readFile(join(own, 'kvm-probe.json'), 'utf8')).works).toBe(false);
      }
      await expectNothingLeft(own);
    },
    // Two boots: where KVM fails (kvm_pvm), its guest runs about a minute before the internal error, then TCG boots.
    2 * BOOT_TIMEOUT_MS,
  );

  it(
    "a mount that fails passes httpstorged's exit code through: missing index 3, untrusted index 4",
    async () => {
      const missing = await runVm(['--state-dir', state, 'boot', `${server.url}nope.idx`, '--no-kvm', ...bootArgs()]);
      expect(missing.code, missing.stderr).toBe(3);
      expect(missing.stderr).toMatch(/^thfc-vm: cannot mount http:\/\/\S+nope\.idx: /m);
      const key = join(work, 'publisher.key');
      expect((await node(BIN.pack, ['keygen', key])).code).toBe(0);
      const untrusted = await runVm([
        '--state-dir',
        state,
        'boot',
        `${server.url}guest.idx`,
        '--trust',
        `${key}.pub`,
        '--no-kvm',
        ...bootArgs(),
      ]);
      expect(untrusted.code, untrusted.stderr).toBe(4);
      expect(untrusted.stderr).toMatch(/cannot mount .*guest\.idx: .*(sign|trust)/i);
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );
});

/** Whether a process with this pid exists (signal 0 tests without sending). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
