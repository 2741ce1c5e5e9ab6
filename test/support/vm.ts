import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildGuestImage, type GuestImage, guestKernelArgs } from './guest-image.mjs';
import { BIN, execFileP, node, ROOT } from './processes.js';

/** thfc-vm end-to-end helpers: the guest packed into a store with a catalog, and runs of the real CLI. */

export const VM = {
  cli: join(ROOT, 'packages/vm-launch/dist/cli.js'),
  kvm: join(ROOT, 'packages/vm-launch/dist/httpfuse-kvm.js'),
  qemu: join(ROOT, 'packages/vm-launch/dist/httpfuse-qemu.js'),
};
/** A TCG boot of the test guest takes 3-8 s on the 2-core CI machine; a busy machine can double that. */
export const BOOT_TIMEOUT_MS = 120_000;

export interface GuestStore {
  guest: GuestImage;
  store: string;
}

/** thfc-vm boot arguments that boot the test guest directly: its kernel, initrd and command line, 256 MiB. */
export function guestBootArgs(g: GuestStore): string[] {
  return [...guestKernelArgs(g.guest), '--mem', '256'];
}

/**
 * Builds (or reuses) the test guest, packs its disk as STORE/guest.idx, puts
 * the kernel and initrd in STORE/boot and lists the image in STORE/catalog.json.
 */
export async function guestStore(work: string): Promise<GuestStore> {
  const guest = await buildGuestImage({ log: (m: string) => process.stderr.write(`[guest-image] ${m}\n`) });
  const store = join(work, 'store');
  const packed = await node(BIN.pack, ['pack', guest.disk, '--store', store, '--name', 'guest', '--json'], {
    timeoutMs: 120_000,
  });
  expect(packed.code, packed.stderr).toBe(0);
  await mkdir(join(store, 'boot'), { recursive: true });
  await copyFile(guest.kernel, join(store, 'boot/vmlinux'));
  await copyFile(guest.initrd, join(store, 'boot/initrd.gz'));
  const add = await node(BIN.pack, [
    'catalog',
    'add',
    store,
    'guest.idx',
    '--description',
    'thfc test guest (Debian kernel + busybox)',
    '--kernel',
    'boot/vmlinux',
    '--initrd',
    'boot/initrd.gz',
    '--append',
    guest.append,
    '--mem',
    '256',
  ]);
  expect(add.code, add.stderr).toBe(0);
  return { guest, store };
}

export interface VmRun {
  child: ChildProcess;
  /** Resolves when the process has exited and its output is complete. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>;
  /** Resolves with the ms since start when `text` first shows up on stdout or stderr. */
  waitFor(text: string | RegExp): Promise<number>;
  output(): { stdout: string; stderr: string };
}

/** Starts `node BIN ARGS` with piped stdio; it is killed at the timeout so no test waits forever. */
export function startVm(
  args: string[],
  o: { bin?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): VmRun {
  const started = Date.now();
  const child = spawn(process.execPath, [o.bin ?? VM.cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...o.env },
  });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string | RegExp; resolve: (ms: number) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const all = stdout + stderr;
      if (typeof w.text === 'string' ? all.includes(w.text) : w.text.test(all)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(Date.now() - started);
      }
    }
  };
  child.stdout?.on('data', (c) => {
    stdout += c;
    check();
  });
  child.stderr?.on('data', (c) => {
    stderr += c;
    check();
  });
  // At the deadline: SIGINT first (thfc-vm stops qemu and unmounts), SIGKILL if that does not end it.
  let kill: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    child.kill('SIGINT');
    kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  }, o.timeoutMs ?? BOOT_TIMEOUT_MS);
  const done = new Promise<Awaited<VmRun['done']>>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (kill) clearTimeout(kill);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
  return {
    child,
    done,
    output: () => ({ stdout, stderr }),
    waitFor: (text) =>
      new Promise((resolve, reject) => {
        waiters.push({ text, resolve });
        check();
        void done.then(() =>
          reject(new Error(`exited before ${text} appeared:\n--- stdout\n${stdout}\n--- stderr\n${stderr}`)),
        );
      }),
  };
}

export const runVm = (args: string[], o?: Parameters<typeof startVm>[1]) => startVm(args, o).done;

/** After a run: no run directory, no mount, no qemu and no httpstorged left that mention STATE. */
export async function expectNothingLeft(state: string): Promise<void> {
  const entries = await readdir(state).catch(() => [] as string[]);
  expect(entries.filter((e) => e.startsWith('run-'))).toEqual([]);
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(state));
  expect(mounts).toEqual([]);
  const procs = await execFileP('pgrep', ['-af', state]).then(
    (r) => r.stdout.split('\n').filter((l) => l && !l.includes('pgrep')),
    () => [] as string[],
  );
  expect(procs).toEqual([]);
}

/** The pid of the qemu-system started for STATE (for crash tests). */
export async function qemuPid(state: string): Promise<number | undefined> {
  const r = await execFileP('pgrep', ['-f', `qemu-system-x86_64 .*${state}`]).catch(() => undefined);
  const pid = Number(r?.stdout.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Safety net for afterAll: stops, by pid, any process whose command line
 * names DIR (a test's own temp directory: qemu, httpstorged or thfc-vm left by
 * a failed test), then detaches any mount under DIR.
 */
export async function stopLeftovers(dir: string): Promise<void> {
  const r = await execFileP('pgrep', ['-f', dir]).catch(() => undefined);
  for (const pid of (r?.stdout ?? '')
    .split('\n')
    .map(Number)
    .filter((n) => n > 0 && n !== process.pid)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir));
  for (const m of mounts) await execFileP('fusermount', ['-u', '-z', m]).catch(() => {});
}
