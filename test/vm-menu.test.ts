import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, execFileP, node, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';
import { BOOT_TIMEOUT_MS, expectNothingLeft, type GuestStore, guestStore, stopLeftovers, VM } from './support/vm.js';

/**
 * The OS menu under a real terminal: tmux gives `thfc-vm menu`,
 * httpfuse-qemu and httpfuse-kvm a pty, and the test presses keys and reads
 * the screen. One run boots the chosen entry for real; the others use
 * --dry-run and check that the chosen entry is the one that would boot.
 * script(1) (util-linux) drives one more run through a bare pty.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let g: GuestStore;
let server: StaticServer;
let state: string;

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
/** One tmux server (socket) per window: a server killed and a new one started at once on the same socket race. */
let socket = '';
const tmux = (...args: string[]) => execFileP('tmux', ['-L', socket, ...args], { timeout: 10_000 });

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-vm-menu-'));
  g = await guestStore(work);
  for (const [name, mem] of [
    ['second', '192'],
    ['third', '128'],
  ] as const) {
    const r = await node(BIN.pack, [
      'catalog',
      'add',
      g.store,
      'guest.idx',
      '--name',
      name,
      '--description',
      `the test guest again (${name})`,
      '--mem',
      mem,
    ]);
    expect(r.code, r.stderr).toBe(0);
  }
  server = await new StaticServer(g.store).start();
  state = join(work, 'state');
}, 600_000);

afterEach(async () => {
  await tmux('kill-server').catch(() => {});
});

afterAll(async () => {
  if (work) await stopLeftovers(work);
  await server?.kill();
  await cleanupWork?.();
});

const session = 'menu';
let windows = 0;

/** Runs COMMAND in a detached 120x40 tmux window; the window stays open after it ends and shows EXIT=<code>. */
async function openWindow(command: string[]): Promise<void> {
  if (socket) await tmux('kill-server').catch(() => {});
  socket = `thfc-vm-menu-${process.pid}-${++windows}`;
  const line = `${command.map(q).join(' ')}; echo EXIT=$?; sleep 600`;
  await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', '-c', work, line);
}

async function screen(): Promise<string> {
  return (await tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-300')).stdout;
}

/** Polls the screen until `pattern` shows up (bounded). */
async function waitForScreen(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    last = await screen();
    if (pattern.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`screen never showed ${pattern}:\n${last}`);
}

const keys = (...k: string[]) => tmux('send-keys', '-t', session, ...k);

describe('the menu under a real terminal (tmux)', () => {
  it('httpfuse-qemu: arrow keys and Enter boot the highlighted entry (dry run), with TCG forced', async () => {
    await openWindow([process.execPath, VM.qemu, server.url, '--state-dir', state, '--dry-run']);
    const first = await waitForScreen(/Selection Menu of OS/);
    expect(first).toMatch(/> 1 +guest +thfc test guest/);
    expect(first).toContain('accelerator: TCG forced');
    await keys('Down', 'Down');
    await waitForScreen(/> 3 +third/);
    await keys('Enter');
    const out = await waitForScreen(/EXIT=\d+/);
    expect(out).toContain('thfc-vm: booting third');
    expect(out).toContain('catalog entry third');
    expect(out).toMatch(/qemu-system-x86_64 -name thfc-third .*-accel tcg .*-m 128 /);
    expect(out).toContain('EXIT=0');
  }, 60_000);

  it('a number picks the entry; q quits without booting', async () => {
    await openWindow([process.execPath, VM.cli, '--state-dir', state, 'menu', server.url, '--no-kvm', '--dry-run']);
    await waitForScreen(/Selection Menu of OS/);
    await keys('2');
    await waitForScreen(/> 2 +second/);
    await keys('Enter');
    const out = await waitForScreen(/EXIT=\d+/);
    expect(out).toMatch(/qemu-system-x86_64 -name thfc-second .*-m 192 /);
    await openWindow([process.execPath, VM.cli, '--state-dir', state, 'menu', server.url, '--no-kvm', '--dry-run']);
    await waitForScreen(/Selection Menu of OS/);
    await keys('q');
    const quit = await waitForScreen(/EXIT=\d+/);
    expect(quit).toContain('thfc-vm: nothing chosen');
    expect(quit).toContain('EXIT=0');
    expect(quit).not.toContain('qemu-system');
  }, 60_000);

  it(
    'the chosen entry really boots: the guest console is the terminal, then everything is cleaned up (slow)',
    async () => {
      await openWindow([
        process.execPath,
        VM.cli,
        '--state-dir',
        state,
        'menu',
        server.url,
        '--no-kvm',
        '--cache',
        join(work, 'cache-menu'),
      ]);
      await waitForScreen(/Selection Menu of OS/);
      await keys('Enter');
      const out = await waitForScreen(/EXIT=\d+/, BOOT_TIMEOUT_MS - 10_000);
      expect(out).toContain('thfc-vm: booting guest');
      expect(out).toContain(g.guest.markerLine);
      expect(out).toContain('EXIT=0');
      await tmux('kill-server'); // the window's shell names the state directory in its command line
      await expectNothingLeft(state);
    },
    BOOT_TIMEOUT_MS,
  );
});

describe('the menu through a bare pty (script(1))', () => {
  it('httpfuse-kvm: Down and Enter over a pty choose the second entry (dry run)', async () => {
    const cmd = [process.execPath, VM.kvm, server.url, '--state-dir', state, '--dry-run'].map(q).join(' ');
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], cwd: work });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    for (let i = 0; i < 300 && !out.includes('Selection Menu of OS'); i++) await new Promise((r) => setTimeout(r, 100));
    child.stdin.write('\x1b[B');
    await new Promise((r) => setTimeout(r, 200));
    child.stdin.write('\r');
    const code = await exited;
    clearTimeout(timer);
    expect(code, out).toBe(0);
    expect(out).toContain('accelerator: auto');
    expect(out).toContain('thfc-vm: booting second');
    expect(out).toMatch(/qemu-system-x86_64 -name thfc-second /);
  }, 60_000);
});
