import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { isMounted } from './support/mounts.js';
import { ENTRY, execFileP, ROOT, tempDir } from './support/processes.js';

/**
 * SIGINT and SIGTERM stop every long-running command with exit 130 and one
 * line (issue 15 §2), whether the signal comes while the command's modules
 * load (held by the bin entry; test/support/slow-load.mjs stretches that
 * moment so a test can hit it) or once it works.
 */
const SLOW_LOAD = join(ROOT, 'test/support/slow-load.mjs');
let work: string;
let cleanupWork: () => Promise<void>;
let store: string;
let serve: Daemon;
let serveUrl: string;
let slowUrl: string;
let proxy: Daemon;

interface Stopped {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs `node [--import slow-load] ENTRY args`, sends `sig` once `when` says so (given the stderr so far), and
 * resolves with how it ended. `when: 'loading'` is the moment the entry loads its CLI.
 */
function interrupt(
  entry: string,
  args: string[],
  sig: NodeJS.Signals,
  when: 'loading' | ((stderr: string) => Promise<boolean>),
  stdin?: (child: ReturnType<typeof spawn>) => void,
): Promise<Stopped> {
  const child = spawn(process.execPath, [...(when === 'loading' ? ['--import', SLOW_LOAD] : []), entry, ...args], {
    stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'],
  });
  // The command may stop before it has read all we write: its closed pipe is expected, not an error of the test.
  child.stdin?.on('error', () => {});
  stdin?.(child);
  let stderr = '';
  let sent = false;
  const send = () => {
    if (sent) return;
    sent = true;
    child.kill(sig);
  };
  child.stderr?.on('data', (c) => {
    stderr += c;
    if (when === 'loading' && stderr.startsWith('loading\n')) send();
  });
  const poll =
    when === 'loading'
      ? undefined
      : setInterval(
          () =>
            void when(stderr).then(
              (yes) => yes && send(),
              () => {},
            ),
          50,
        );
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(kill);
      resolve({ code, signal, stderr: when === 'loading' ? stderr.replace(/^loading\n/, '') : stderr });
    }),
  );
}

const lines = (s: string) => s.trimEnd().split('\n');
const hasFiles = (dir: string) => async () => (await readdir(dir).catch(() => [])).length > 0;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-interrupts-'));
  store = join(work, 'store');
  const img = join(work, 'disk.img');
  await makeImage(img, [['random', 16]]);
  await execFileP(process.execPath, [ENTRY.pack, 'pack', img, '--store', store]);
  serve = new Daemon('serve', process.execPath, [ENTRY.mirror, 'serve', store, '--listen', '127.0.0.1:0']);
  await waitUntil(serve, 'serve listening', async () => /serving .* on http:/.test(serve.output));
  serveUrl = /on (http:\/\/\S+\/)/.exec(serve.output)?.[1] as string;
  // A slow link in front of it (4 MiB/s), so a sync is still fetching when the test interrupts it.
  proxy = new Daemon('proxy', process.execPath, [
    ENTRY.mirror,
    'proxy',
    serveUrl,
    '--listen',
    '127.0.0.1:0',
    '--inject',
    'bandwidth=4MiB/s',
  ]);
  await waitUntil(proxy, 'proxy listening', async () => /http:\/\/127\.0\.0\.1:\d+\//.test(proxy.output));
  slowUrl = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(proxy.output)?.[1] as string;
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await serve?.stop();
  await cleanupWork?.();
});

describe('a signal while the command loads: 130 and one line, nothing started', () => {
  it('thfc-pack pack', async () => {
    const out = join(work, 'early-pack');
    const r = await interrupt(ENTRY.pack, ['pack', join(work, 'disk.img'), '--store', out], 'SIGINT', 'loading');
    expect(r).toEqual({
      code: 130,
      signal: null,
      stderr: 'thfc-pack: interrupted before reading the image; nothing was stored\n',
    });
  }, 60_000);

  it('thfc-mirror sync', async () => {
    const out = join(work, 'early-sync');
    const r = await interrupt(ENTRY.mirror, ['sync', serveUrl, '--store', out], 'SIGTERM', 'loading');
    expect(r).toEqual({
      code: 130,
      signal: null,
      stderr:
        'thfc-mirror: sync interrupted: 0 block(s) fetched so far are kept; run the same command again to resume\n',
    });
  }, 60_000);

  it('thfc-mirror serve', async () => {
    const r = await interrupt(ENTRY.mirror, ['serve', store, '--listen', '127.0.0.1:0'], 'SIGINT', 'loading');
    expect(r).toEqual({ code: 130, signal: null, stderr: 'thfc-mirror: interrupted by SIGINT\n' });
  }, 60_000);

  it('httpstorged -f', async () => {
    const mnt = join(work, 'early-mnt');
    await mkdir(mnt);
    const r = await interrupt(
      ENTRY.httpstorged,
      ['-f', mnt, join(store, 'disk.idx'), '--cache', join(work, 'early-cache')],
      'SIGTERM',
      'loading',
    );
    expect(r).toEqual({ code: 130, signal: null, stderr: 'httpstorged: interrupted by SIGTERM\n' });
    expect(await isMounted(mnt)).toBe(false);
  }, 60_000);
});

describe('a signal once the command works: 130, and its last line says what was kept', () => {
  it('thfc-pack pack from a pipe, after its first blocks', async () => {
    const out = join(work, 'late-pack');
    const r = await interrupt(
      ENTRY.pack,
      ['pack', '-', '--name', 'piped', '--store', out],
      'SIGTERM',
      hasFiles(join(out, 'blocks')),
      // 8 MiB now, and the pipe left open: the pack is waiting for more when the signal comes.
      (child) => child.stdin?.write(Buffer.alloc(8 << 20, 7)),
    );
    expect(r.code).toBe(130);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^thfc-pack: interrupted after \d+ blocks; .* run the same command again to finish\n$/);
  }, 60_000);

  it('thfc-mirror sync through a slow link, after its first blocks', async () => {
    const out = join(work, 'late-sync');
    const r = await interrupt(ENTRY.mirror, ['sync', slowUrl, '--store', out], 'SIGINT', hasFiles(join(out, 'blocks')));
    expect(r.code).toBe(130);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^thfc-mirror: sync interrupted: [1-9]\d* block\(s\) .* kept; run the same command again/);
  }, 60_000);

  it('thfc-mirror serve, once listening', async () => {
    const r = await interrupt(ENTRY.mirror, ['serve', store, '--listen', '127.0.0.1:0'], 'SIGTERM', async (e) =>
      e.includes('serving'),
    );
    expect(r.code).toBe(130);
    expect(lines(r.stderr).at(-1)).toMatch(
      /^thfc-mirror: stopped serving http:\/\/127\.0\.0\.1:\d+\/ after 0 requests$/,
    );
  }, 60_000);

  it('httpstorged -f, once mounted', async () => {
    const mnt = join(work, 'late-mnt');
    await mkdir(mnt);
    const r = await interrupt(
      ENTRY.httpstorged,
      ['-f', mnt, join(store, 'disk.idx'), '--cache', join(work, 'late-cache')],
      'SIGINT',
      async (e) => e.includes('Ctrl-C to unmount'),
    );
    expect(r.code).toBe(130);
    expect(lines(r.stderr).at(-1)).toMatch(/INFO unmounted /);
    expect(await isMounted(mnt)).toBe(false);
  }, 60_000);
});
