import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

/** The CLI as a user meets it: real processes, exit codes from the table, one-line messages. */
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const QEMU_BIN = fileURLToPath(new URL('../dist/httpfuse-qemu.js', import.meta.url));
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeFile(join(dir, 'disk.img'), Buffer.alloc(65536));
});
afterAll(() => cleanup());

function cli(args: string[], o: { input?: string; env?: Record<string, string>; bin?: string } = {}) {
  const r = spawnSync(process.execPath, [o.bin ?? CLI, '--state-dir', join(dir, 'state'), ...args], {
    cwd: dir,
    input: o.input ?? '',
    env: { ...process.env, THFC_CATALOG: '', ...o.env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function oneLine(r: ReturnType<typeof cli>, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.split('\n').filter((l) => l.startsWith('thfc-vm: '))).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('thfc-vm CLI', () => {
  it('help, and usage errors exit 2', () => {
    expect(cli(['--help']).code).toBe(0);
    expect(cli(['boot', '--help']).stdout).toMatch(/--keep-overlay/);
    expect(cli(['frobnicate']).code).toBe(2);
    oneLine(cli(['boot', 'disk.img', '--no-kvm', '--accel', 'kvm', '--dry-run']), 2, /contradict/);
    oneLine(cli(['boot', 'disk.img', '--vnc', 'five', '--dry-run']), 2, /--vnc wants a display/);
    oneLine(cli(['list']), 2, /no catalog/);
  });

  it('boot-profile flags: in the help, passed to the mount, refused for a disk file', () => {
    const help = cli(['boot', '--help']).stdout;
    for (const flag of ['--record-profile <file>', '--prefetch <file|url>', '--no-prefetch', '--fill'])
      expect(help).toContain(flag);
    oneLine(
      cli(['boot', 'disk.img', '--record-profile', 'p.profile', '--dry-run']),
      2,
      /--record-profile: \S+disk\.img is a disk file, not an index/,
    );
    const plan = cli([
      'boot',
      'http://m.example/g.idx',
      '--no-kvm',
      '--record-profile',
      'p.profile',
      '--fill',
      '--dry-run',
    ]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(
      /^httpstorged \S+ http:\/\/m\.example\/g\.idx --record-profile \S+\/p\.profile --fill$/m,
    );
  });

  it('a missing image or kernel: exit 3', () => {
    oneLine(cli(['boot', './none.img', '--dry-run']), 3, /none\.img: no such file/);
    oneLine(cli(['boot', 'disk.img', '--kernel', 'vmlinuz-none', '--dry-run']), 3, /vmlinuz-none: no such file/);
  });

  it('a malformed catalog: exit 4 naming the field', async () => {
    await writeFile(
      join(dir, 'catalog.json'),
      '{"format":"thfc-catalog","version":1,"images":[{"name":"x","index":"x.idx","boot":{"mem":"lots"}}]}',
    );
    oneLine(cli(['list', '.']), 4, /catalog\.json: images\[0\]\.boot\.mem: expected an integer/);
  });

  it('an engine that is not installed: exit 69, and --dry-run still prints its config', () => {
    const env = { PATH: '/usr/bin:/bin' };
    oneLine(cli(['boot', 'disk.img', '--engine', 'xen'], { env }), 69, /xl not found: .*--dry-run prints/);
    oneLine(cli(['boot', 'disk.img', '--engine', 'virtualbox'], { env }), 69, /VBoxManage not found/);
    const xen = cli(['boot', 'disk.img', '--engine', 'xen', '--dry-run'], { env });
    expect(xen.code).toBe(0);
    expect(xen.stdout).toMatch(/^xl create -c /m);
  });

  it('--dry-run prints the qemu command line and nothing runs', () => {
    const r = cli(['boot', 'disk.img', '--no-kvm', '--mem', '1G', '--cpus', '2', '--net', 'user', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^qemu-system-x86_64 .*-accel tcg .*-m 1024 -smp 2 .*-netdev user,id=net0/m);
  });

  it('probe answers from the cache file: exit 0 when KVM works, 1 when not', async () => {
    const r = cli(['probe', '--json']);
    const answer = JSON.parse(r.stdout);
    expect(r.code).toBe(answer.works ? 0 : 1);
    expect(typeof answer.reason).toBe('string');
    expect(JSON.parse(cli(['probe', '--json']).stdout).cached).toBe(answer.key !== '');
  }, 60_000);

  it('httpfuse-qemu opens the menu with TCG forced', async () => {
    await writeFile(
      join(dir, 'catalog.json'),
      JSON.stringify({ format: 'thfc-catalog', version: 1, images: [{ name: 'x', index: 'x.idx' }] }),
    );
    const r = cli(['.', '--dry-run'], { bin: QEMU_BIN, input: '1\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^1 {2}x/m);
    expect(r.stdout).toMatch(/-accel tcg/);
  });
});
