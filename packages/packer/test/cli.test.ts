import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, type CliResult, imageBytes, runCli, tempDir, writeImage } from './helpers.js';

/**
 * The CLI as a user meets it: real processes, real exit codes, one-line
 * messages, never a stack trace for a user's mistake, and a store left
 * consistent so that the same command run again finishes the job.
 */
const K = 1024;
const isRoot = process.getuid?.() === 0;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

function expectOneLineError(r: CliResult, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines.filter((l) => l.startsWith('thfc-pack: '))).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

async function allFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

describe('thfc-pack CLI', () => {
  it('prints help and rejects unknown commands with usage exit 2', async () => {
    expect((await runCli(['--help'])).code).toBe(0);
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
  });

  it('missing image: exit 3 and one line', async () => {
    const r = await runCli(['pack', join(dir, 'missing.img'), '--store', join(dir, 's')]);
    expectOneLineError(r, 3, /missing\.img: no such file or directory/);
  });

  it.runIf(isRoot)('unreadable image: exit 3, permission denied', async () => {
    await chmod(dir, 0o777);
    const img = join(dir, 'secret.img');
    await writeImage(img, [['t', 8 * K]]);
    await chmod(img, 0o000);
    const r = await runCli(['pack', img, '--store', join(dir, 's')], { uid: 65534 });
    expectOneLineError(r, 3, /permission denied/);
  });

  it.runIf(isRoot)('a store on a read-only file system: exit 5, "read-only file system"', async () => {
    const img = join(dir, 'a.img');
    await writeImage(img, [['t', 8 * K]]);
    const ro = join(dir, 'ro');
    await mkdir(join(ro, 'empty-store'), { recursive: true });
    execFileSync('mount', ['--bind', ro, ro]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
      expectOneLineError(await runCli(['pack', img, '-s', join(ro, 'empty-store')]), 5, /read-only file system/);
      expectOneLineError(await runCli(['pack', img, '-s', join(ro, 'new', 'store')]), 5, /read-only file system/);
    } finally {
      execFileSync('umount', [ro]);
    }
  });

  it('a disk image given as an index: "not a thfc index", exit 4', async () => {
    const img = join(dir, 'disk.img');
    await writeFile(img, Buffer.concat([Buffer.from([0xeb, 0x63, 0x90]), Buffer.alloc(70_000, 1)]));
    expectOneLineError(await runCli(['inspect', img]), 4, /not a thfc index: .*a disk image/);
  });

  it('wrong block size: exit 2 and a hint', async () => {
    const img = join(dir, 'a.img');
    await writeImage(img, [['t', 8 * K]]);
    expectOneLineError(await runCli(['pack', img, '-s', join(dir, 's'), '-b', '3000']), 2, /power of two/);
    expectOneLineError(await runCli(['pack', img, '-s', join(dir, 's'), '-b', '8M']), 2, /power of two/);
    expectOneLineError(await runCli(['pack', img, '-s', join(dir, 's'), '-b', 'big']), 2, /bad size/);
  });

  it('an index where a store belongs, and the other way round: exit 2 with a hint', async () => {
    const img = join(dir, 'a.img');
    await writeImage(img, [['t', 8 * K]]);
    const store = join(dir, 's');
    expect((await runCli(['pack', img, '-s', store])).code).toBe(0);
    const idx = join(store, 'a.idx');
    expectOneLineError(await runCli(['pack', img, '-s', idx]), 2, /is an index file, not a store directory/);
    expectOneLineError(await runCli(['pack', idx, '-s', store]), 2, /is a thfc index, not a disk image/);
    expectOneLineError(await runCli(['unpack', store, join(dir, 'o')]), 2, /is a directory \(a store\?\)/);
    expectOneLineError(await runCli(['verify', idx]), 2, /is an index file, not a store directory/);
    expectOneLineError(await runCli(['gc', idx]), 2, /is an index file, not a store directory/);
  });

  it('a tampered or truncated index: exit 4, naming the line', async () => {
    const img = join(dir, 'a.img');
    await writeImage(img, [['t', 40 * K]]);
    const store = join(dir, 's');
    expect((await runCli(['pack', img, '-s', store, '-b', '4K'])).code).toBe(0);
    const idx = join(store, 'a.idx');
    const good = await readFile(idx, 'utf8');
    const tampered = good.replace(
      /\n([0-9a-f])([0-9a-f]{39} )/,
      (_m, c: string, rest: string) => `\n${c === '0' ? '1' : '0'}${rest}`,
    );
    await writeFile(idx, tampered);
    expectOneLineError(await runCli(['inspect', idx]), 4, /line \d+ \(end\): digest does not match/);
    expectOneLineError(await runCli(['unpack', idx, join(dir, 'o')]), 4, /digest does not match/);
    await writeFile(idx, good.slice(0, good.length / 2));
    expectOneLineError(await runCli(['inspect', idx]), 4, /truncated/);
    await writeFile(idx, good);
    expect((await runCli(['inspect', idx])).code).toBe(0);
  });

  it('verify exits 1 when a block is missing and 0 when whole', async () => {
    const img = join(dir, 'a.img');
    await writeImage(img, [['t', 20 * K]]);
    const store = join(dir, 's');
    const p = await runCli(['pack', img, '-s', store, '-b', '4K', '--json']);
    expect(JSON.parse(p.stdout).uniqueBlocks).toBe(5);
    expect((await runCli(['verify', store])).code).toBe(0);
    const shard = (await readdir(join(store, 'blocks')))[0] as string;
    const { rm } = await import('node:fs/promises');
    await rm(join(store, 'blocks', shard), { recursive: true });
    const r = await runCli(['verify', store]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^missing [0-9a-f]{40} \(a\)/m);
  });

  it('--json gives a machine-readable summary on stdout', async () => {
    const img = join(dir, 'a.img');
    await writeImage(img, [
      ['t', 300 * K],
      ['z', 256 * K],
    ]);
    const r = await runCli(['pack', img, '-s', join(dir, 's'), '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ name: 'a', blocks: 3, zeroBlocks: 1, uniqueBlocks: 2, newBlocks: 2, bytesIn: 556 * K });
    expect(r.stderr).toBe('');
  });

  it.runIf(isRoot)(
    'a full disk: exit 5 and a clear message; the rerun after freeing space reuses what was written',
    async () => {
      const mnt = join(dir, 'small');
      await mkdir(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'thfc-test', mnt]);
      try {
        const img = join(dir, 'big.img');
        await writeImage(img, [['r', 2048 * K]]); // incompressible: needs 2 MiB
        const store = join(mnt, 'store');
        const r = await runCli(['pack', img, '-s', store, '-b', '64K']);
        expectOneLineError(r, 5, /is full .*run the same command again to resume/);
        const after = await allFiles(store);
        expect(after.filter((f) => f.includes('.tmp-') || f.endsWith('.idx'))).toEqual([]);
        const written = after.filter((f) => /[0-9a-f]{40}$/.test(f)).length;
        expect(written).toBeGreaterThan(0);
        execFileSync('mount', ['-o', 'remount,size=8m', mnt]);
        const again = await runCli(['pack', img, '-s', store, '-b', '64K', '--json']);
        expect(again.code, again.stderr).toBe(0);
        const s = JSON.parse(again.stdout);
        expect(s.newBlocks).toBe(s.uniqueBlocks - written);
        expect((await runCli(['verify', store])).code).toBe(0);
      } finally {
        execFileSync('umount', ['-l', mnt]);
      }
    },
  );

  it('Ctrl-C in the middle: exit 130, whole blocks kept, and the rerun finishes reusing them', async () => {
    const store = join(dir, 's');
    const bytes = imageBytes([['t', 4096 * K]], 11);
    const child = spawn(process.execPath, [CLI, 'pack', '-', '--name', 'piped', '-s', store, '-b', '64K'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    const closed = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    child.stdin.write(bytes.subarray(0, 1024 * K)); // half the image, then the pipe goes quiet
    const deadline = Date.now() + 10_000;
    let files: string[] = [];
    while (Date.now() < deadline) {
      files = (await allFiles(store).catch(() => [])).filter((f) => /[0-9a-f]{40}$/.test(f));
      if (files.length >= 8) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(files.length).toBeGreaterThanOrEqual(8);
    child.kill('SIGINT');
    const code = await closed;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted .* run the same command again/);
    const left = await allFiles(store);
    expect(left.filter((f) => f.includes('.tmp-') || f.endsWith('.idx'))).toEqual([]);
    const kept = left.filter((f) => /[0-9a-f]{40}$/.test(f)).length;
    const again = await runCli(['pack', '-', '--name', 'piped', '-s', store, '-b', '64K', '--json'], { input: bytes });
    expect(again.code, again.stderr).toBe(0);
    const s = JSON.parse(again.stdout);
    expect(s.newBlocks).toBe(s.uniqueBlocks - kept);
    expect(s.bytesIn).toBe(bytes.length);
  });
});
