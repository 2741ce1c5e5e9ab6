#!/usr/bin/env node
// `npm run read-path`: which of the repository's source files one cold miss and one warm hit cross, counted by
// V8's precise coverage in a real mount (issue #14: "a cold miss crosses at most 8 files, and a warm hit is
// answered in one place").
//
// It packs a small random image, serves it with `thfc-mirror serve` on 127.0.0.1, mounts it in this process
// (mountImages, the daemon's own code) and reads single 4 KiB pieces from a child `dd` (never from this process:
// it serves the mount). Between two coverage snapshots it does exactly one of:
//   idle   nothing, for as long as a read's window (timers that tick anyway: subtracted from the others);
//   cold   a block never read (fetched, verified, handed to the disk cache and written);
//   first  the same block again, the page cache dropped (the block's file is opened);
//   warm   the same block once more (its file open: the hot index answers within the FUSE callback);
//   sealed the same block after a clean stop and a fresh mount (the disk cache's file, trusted by its seal).
// A file counts when any of its functions ran in the window and it did not run while idle. Only this
// repository's packages count (not undici, not fuse-native). The block worker thread is another isolate: the
// decode and hash it runs are named apart.
//   node scripts/read-path-files.mjs [--json] [--check-cold N] [--check-warm N]   (root; needs /dev/fuse)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const limit = (flag) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : undefined);
const checkCold = limit('--check-cold');
const checkWarm = limit('--check-warm');

const BLOCK = 256 * 1024;
const BLOCKS = 64;
/** The block measured: far from block 0 (the warm-up), so no read-ahead of the warm-up covers it. */
const PROBE = 40;
/** Long enough for a loopback fetch, its check and its cache write to finish, on a loaded machine. */
const SETTLE_MS = 500;

const bin = (pkg) => join(ROOT, 'packages', pkg, 'dist', 'bin.js');
const blockfs = (file) => import(pathToFileURL(join(ROOT, 'packages', 'blockfs', 'dist', file)).href);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(cmd, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${argv.join(' ')}: exit ${code}: ${err.trim()}`)),
    );
  });
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function waitHealthy(url) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`${url} never answered`);
}

/** One 4 KiB read at block `block` of the mounted image, from a child process. */
const readPiece = (file, block) =>
  run('dd', [`if=${file}`, 'of=/dev/null', 'bs=4096', 'count=1', `skip=${(block * BLOCK) / 4096}`]);
const dropPageCache = () => writeFileSync('/proc/sys/vm/drop_caches', '1');

/** The repository's source files whose functions ran since the last snapshot, with how many calls. */
async function snapshot(session) {
  const { result } = await session.post('Profiler.takePreciseCoverage');
  const files = new Map();
  for (const script of result) {
    if (!script.url.startsWith('file://')) continue;
    const path = relative(ROOT, fileURLToPath(script.url));
    const m = /^packages\/([^/]+)\/dist\/(.+)\.js$/.exec(path);
    if (!m) continue;
    let calls = 0;
    // detailed: false gives one range per function, the first one covering its body with its call count.
    for (const fn of script.functions)
      if (fn.functionName !== '' || fn.ranges[0].startOffset !== 0) calls += fn.ranges[0].count;
    if (calls > 0) files.set(`packages/${m[1]}/src/${m[2]}.ts`, calls);
  }
  return files;
}

function minus(files, idle) {
  return new Map([...files].filter(([f]) => !idle.has(f)));
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'thfc-read-path-'));
  const cleanups = [() => rmSync(work, { recursive: true, force: true })];
  try {
    const image = join(work, 'image.img');
    writeFileSync(image, randomBytes(BLOCKS * BLOCK));
    const store = join(work, 'store');
    await run(process.execPath, [bin('packer'), 'pack', image, '--store', store, '--name', 'img', '--json']);

    const port = await freePort();
    const mirror = spawn(
      process.execPath,
      [bin('mirror'), 'serve', store, '--listen', `127.0.0.1:${port}`, '--no-access-log'],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    cleanups.unshift(() => mirror.kill('SIGTERM'));
    process.once('exit', () => mirror.kill('SIGKILL')); // however this process ends
    const base = `http://127.0.0.1:${port}/`;
    await waitHealthy(`${base}healthz`);

    const { mountImages } = await blockfs('mount.js');
    const { MemoryLogger } = await import(pathToFileURL(join(ROOT, 'packages', 'store', 'dist', 'index.js')).href);
    const mnt = join(work, 'mnt');
    await run('mkdir', ['-p', mnt]);
    const options = { mountpoint: mnt, indexes: [`${base}img.idx`], cacheDir: join(work, 'cache'), checkIntervalMs: 0 };
    const mount = () => mountImages(options, { logger: new MemoryLogger(), env: {} });
    let mounted = await mount();
    cleanups.unshift(() => mounted?.unmount());
    // Ctrl-C, or a reader of our output gone (`| head`): never leave the mount (served by this process) behind.
    const abandon = (code) => {
      spawnSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' });
      mirror.kill('SIGKILL');
      rmSync(work, { recursive: true, force: true });
      process.exit(code);
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(signal, () => abandon(130));
    process.stdout.on('error', () => abandon(141));
    const file = join(mnt, 'img');

    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: false });

    // Warm-up: the first read pays for one-time work (connections, the worker thread, cache directories).
    await readPiece(file, 0);
    await sleep(SETTLE_MS);
    await snapshot(session);
    await sleep(SETTLE_MS);
    const idle = await snapshot(session);

    await readPiece(file, PROBE);
    await sleep(SETTLE_MS);
    const cold = minus(await snapshot(session), idle);

    dropPageCache();
    await snapshot(session);
    await readPiece(file, PROBE);
    const firstUse = minus(await snapshot(session), idle);

    dropPageCache();
    await snapshot(session);
    await readPiece(file, PROBE);
    const warm = minus(await snapshot(session), idle);

    await mounted.unmount();
    mounted = await mount();
    dropPageCache();
    await readPiece(file, 0); // the fresh daemon's own one-time work
    await sleep(SETTLE_MS);
    await snapshot(session);
    await readPiece(file, PROBE);
    const sealed = minus(await snapshot(session), idle);
    await session.post('Profiler.stopPreciseCoverage');
    session.disconnect();

    const report = {
      idle: [...idle.keys()].sort(),
      cold: Object.fromEntries([...cold].sort()),
      firstUse: Object.fromEntries([...firstUse].sort()),
      warm: Object.fromEntries([...warm].sort()),
      sealed: Object.fromEntries([...sealed].sort()),
      worker:
        'a fetched block is decoded and hashed in the block worker thread (packages/blockfs/src/io/block-worker.ts), not counted above',
    };
    if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      for (const [name, files] of [
        ['cold miss', cold],
        ['first use of the block just written (its file opened)', firstUse],
        ['warm hit (the block cached, its file open)', warm],
        ['first use by a fresh daemon, trusted by the seal', sealed],
      ]) {
        process.stdout.write(`${name}: ${files.size} files\n`);
        for (const [f, calls] of [...files].sort()) process.stdout.write(`  ${String(calls).padStart(5)}  ${f}\n`);
      }
      process.stdout.write(
        `(ran while idle, not counted: ${report.idle.join(', ') || 'nothing'})\n(${report.worker})\n`,
      );
    }
    const over = [];
    if (checkCold !== undefined && cold.size > checkCold)
      over.push(`a cold miss crosses ${cold.size} files (limit ${checkCold})`);
    if (checkWarm !== undefined && warm.size > checkWarm)
      over.push(`a warm hit crosses ${warm.size} files (limit ${checkWarm})`);
    if (over.length) {
      process.stderr.write(`read-path: ${over.join('; ')}\n`);
      process.exitCode = 1;
    }
  } finally {
    // Each step on its own: a mount that will not unmount still leaves the mirror stopped and the files gone.
    for (const c of cleanups) {
      try {
        await c();
      } catch (e) {
        process.stderr.write(`read-path: cleanup: ${e?.message ?? e}\n`);
      }
    }
  }
}

await main();
