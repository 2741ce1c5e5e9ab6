// Scale section `index` (issue 17 §2): a 1 TiB image's index, and packing a 1 TiB sparse image.
//
//   index      4,194,304 entries (a 1 TiB image of 256 KiB blocks), written with encodeIndex from synthetic entries:
//              every id distinct (nothing dedups), 1 in 97 blocks zero. ~216 MB of text.
//   decode     decodeIndex in this process: MB/s of index text (wall and CPU), against SHA-256 of the same bytes (the
//              decoder hashes every byte: its ceiling); then the entries' typed arrays and the id table per block.
//   inspect    `thfc-pack inspect` of it: wall time and peak RSS (/usr/bin/time).
//   mount      `thfc-mirror serve` holds it; `httpstorged MNT URL --cache DIR --no-prefetch` mounts it twice, the first
//              to fill the index cache; the second (a revalidation) is measured: the command's wall time until
//              mounted, and the daemon's RSS 2 s later.
//   pack       `thfc-pack pack` of a 1 TiB sparse file holding 1 GiB (64 × 16 MiB of random bytes, scattered):
//              wall time and peak RSS.
//
// Targets (issue 17): decode ≥ 100 MB/s; entries ≤ 32 bytes/block; inspect ≤ 5 s; mount ≤ 5 s with daemon RSS
// ≤ 300 MB; pack ≤ 30 s and ≤ 200 MB. The machine is shared: wall times move with its load, CPU times less.
//
// Env: BENCH_INDEX_BLOCKS (default 4194304); BENCH_INDEX_PARTS (comma list of `index`, the index and what measures it:
// decode, inspect, mount; and `pack`; default both).

import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BenchError,
  ensureDir,
  envInt,
  freePort,
  MB,
  requireBuilt,
  requireTools,
  runCommand,
  startProcess,
  THFC_CLIS,
  waitForQuiet,
} from '../lib.mjs';

export const title =
  '4M-block index: decode rate, bytes/block, inspect, mount (cached) and daemon RSS; 1 TiB sparse pack';

const FORMAT_LIB = 'packages/format/dist/index.js';
const BLOCK_SIZE = 256 * 1024;
const DEFAULT_BLOCKS = 4_194_304;
const TIB = 2 ** 40;
const DATA_PIECES = 64;
const PIECE = 16 * 2 ** 20;
const QUIET_WAIT_MS = 20_000;

export async function run(ctx) {
  const { results } = ctx;
  await requireTools([['time', 'time']]);
  const [pack, mount, mirror, lib] = [THFC_CLIS.pack, THFC_CLIS.httpstorged, THFC_CLIS.mirror, FORMAT_LIB].map((p) =>
    resolve(ctx.repoRoot, p),
  );
  await requireBuilt([pack, mount, mirror, lib]);
  const { encodeIndex, decodeIndex } = await import(pathToFileURL(lib).href);
  const blocks = envInt('BENCH_INDEX_BLOCKS', DEFAULT_BLOCKS);
  const parts = (process.env.BENCH_INDEX_PARTS ?? 'index,pack').split(',').map((p) => p.trim());
  const unknown = parts.filter((p) => p !== 'index' && p !== 'pack');
  if (unknown.length)
    throw new BenchError('USAGE', `BENCH_INDEX_PARTS: unknown ${unknown.join(', ')}; have index, pack`);
  const out = {};
  results.index = out;
  if (parts.includes('index')) await measureIndex({ ctx, out, blocks, pack, mount, mirror, encodeIndex, decodeIndex });
  if (parts.includes('pack')) await measurePack({ ctx, out, pack });
}

async function measureIndex({ ctx, out, blocks, pack, mount, mirror, encodeIndex, decodeIndex }) {
  const { table, scratch, signal } = ctx;

  // --- The index ------------------------------------------------------------------------------------
  const store = await ensureDir(join(scratch, 'index-store'));
  const indexPath = join(store, 'big.idx');
  const ids = randomBytes(blocks * 20);
  const bytes = encodeIndex(
    {
      version: 1,
      name: 'big',
      size: blocks * BLOCK_SIZE,
      blockSize: BLOCK_SIZE,
      hash: 'sha1',
      codec: 'zstd:3',
      created: '2026-12-06T00:00:00Z',
    },
    (function* () {
      for (let i = 0; i < blocks; i++) {
        if (i % 97 === 5) yield { zero: true };
        else yield { id: ids.toString('hex', i * 20, i * 20 + 20), codec: 'zstd', storedSize: 1000 + (i % 100_000) };
      }
    })(),
  );
  await writeFile(indexPath, bytes);
  out.indexBytes = bytes.length;
  table.info('index.bytes', `index of ${blocks} blocks (256 KiB): text`, bytes.length, 'MB');

  // --- Decode in process --------------------------------------------------------------------------------
  await waitForQuiet({ signal, log: ctx.log, maxWaitMs: QUIET_WAIT_MS });
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  let t = performance.now();
  createHash('sha256').update(bytes).digest();
  const hashRate = bytes.length / 1e6 / ((performance.now() - t) / 1000);
  t = performance.now();
  const c = cpu();
  const decoded = decodeIndex(bytes);
  const wall = (performance.now() - t) / 1000;
  const cpuSeconds = cpu() - c;
  out.decode = { wall, cpu: cpuSeconds, mbPerSecond: bytes.length / 1e6 / wall };
  table.info('index.sha256', 'SHA-256 of the index text (the decoder hashes it all: its ceiling)', hashRate, 'MB/s');
  table.compare(
    'index.decode',
    'decodeIndex: MB/s of index text, wall (vs target)',
    out.decode.mbPerSecond,
    100,
    'MB/s',
    '>=',
    1,
  );
  table.info('index.decode.cpu', 'decodeIndex: MB/s per CPU second', bytes.length / 1e6 / cpuSeconds, 'MB/s');
  // The entries: ImageIndex's typed arrays (ids, codec bytes, stored sizes), and the id table once built.
  const arrays = (o) => Object.values(o).filter((v) => ArrayBuffer.isView(v));
  const entryBytes = arrays(decoded.index).reduce((s, a) => s + a.byteLength, 0);
  t = performance.now();
  decoded.index.counts();
  out.tableSeconds = (performance.now() - t) / 1000;
  // The table's own arrays: it also points at the index's ids, counted above.
  const tableBytes = arrays(decoded.index.table ?? {})
    .filter((a) => !arrays(decoded.index).some((e) => e.buffer === a.buffer))
    .reduce((s, a) => s + a.byteLength, 0);
  out.bytesPerBlock = { entries: entryBytes / blocks, table: tableBytes / blocks };
  table.compare(
    'index.perblock',
    'entries in typed arrays: bytes/block (vs target)',
    entryBytes / blocks,
    32,
    'B',
    '<=',
    1,
  );
  table.info('index.table', 'the distinct-id table, built on first use: bytes/block', tableBytes / blocks, 'B');
  table.info('index.table.s', 'the distinct-id table: build time', out.tableSeconds, 's');

  // --- inspect ------------------------------------------------------------------------------------
  await waitForQuiet({ signal, log: ctx.log, maxWaitMs: QUIET_WAIT_MS });
  const inspect = await timed(process.execPath, [pack, 'inspect', indexPath], signal);
  out.inspect = inspect;
  table.compare('index.inspect', '`thfc-pack inspect` of it: wall (vs target)', inspect.seconds, 5, 's', '<=', 1);
  table.info('index.inspect.rss', '`thfc-pack inspect`: peak RSS', inspect.maxRssMb * MB, 'MB');

  // --- mount, index cached --------------------------------------------------------------------------
  const port = await freePort();
  const server = startProcess(process.execPath, [mirror, 'serve', store, '--listen', `127.0.0.1:${port}`], {
    stdin: 'ignore',
  });
  try {
    await server.waitFor(/serving /, 20_000);
    const mnt = await ensureDir(join(scratch, 'mnt'));
    const cache = await ensureDir(join(scratch, 'cache'));
    const url = `http://127.0.0.1:${port}/big.idx`;
    for (const round of [1, 2]) {
      if (round === 2) await waitForQuiet({ signal, log: ctx.log, maxWaitMs: QUIET_WAIT_MS });
      const log = join(scratch, `mount-${round}.log`);
      const r = await runCommand(process.execPath, [mount, mnt, url, '--cache', cache, '--log', log, '--no-prefetch'], {
        signal,
      });
      const pid = Number(/daemon pid (\d+)/.exec(r.stdout + r.stderr)?.[1]);
      await new Promise((res) => setTimeout(res, 2000));
      const rssMb = await vmRssMb(pid);
      await runCommand(process.execPath, [mount, 'umount', mnt], { signal });
      out[`mount${round}`] = { seconds: r.seconds, rssMb };
    }
  } finally {
    await server.stop();
  }
  table.compare(
    'index.mount',
    'httpstorged mount, index cached (revalidated): wall (vs target)',
    out.mount2.seconds,
    5,
    's',
    '<=',
    1,
  );
  table.compare(
    'index.mount.rss',
    'httpstorged daemon RSS 2 s after that mount (vs target)',
    out.mount2.rssMb * MB,
    300 * MB,
    'MB',
    '<=',
    1,
  );
  table.info('index.mount.first', 'httpstorged mount, index downloaded: wall', out.mount1.seconds, 's');
}

async function measurePack({ ctx, out, pack }) {
  const { table, scratch, signal } = ctx;
  // --- pack 1 TiB sparse ----------------------------------------------------------------------------
  const image = join(scratch, 'sparse.img');
  await writeFile(image, '');
  await truncate(image, TIB);
  const fh = await open(image, 'r+');
  try {
    for (let k = 0; k < DATA_PIECES; k++) await fh.write(randomBytes(PIECE), 0, PIECE, (TIB / DATA_PIECES) * k);
  } finally {
    await fh.close();
  }
  await waitForQuiet({ signal, log: ctx.log, maxWaitMs: QUIET_WAIT_MS });
  const packed = await timed(
    process.execPath,
    [pack, 'pack', image, '-s', join(scratch, 'pack-store'), '-n', 'sparse'],
    signal,
  );
  out.pack = packed;
  table.compare(
    'index.pack',
    'thfc-pack pack, 1 TiB sparse holding 1 GiB: wall (vs target)',
    packed.seconds,
    30,
    's',
    '<=',
    1,
  );
  // Beside the disk's ceiling (the `ceilings` section, when it ran): the data regions' read rate, start-up included.
  const disk = ctx.results.ceilings?.diskMBps;
  table.info(
    'index.pack.read',
    'thfc-pack pack, that image: MB/s of data read, whole run (baseline: disk O_DIRECT)',
    (DATA_PIECES * PIECE) / MB / packed.seconds,
    'MB/s',
    disk,
  );
  table.compare(
    'index.pack.rss',
    'thfc-pack pack, that image: peak RSS (vs target)',
    packed.maxRssMb * MB,
    200 * MB,
    'MB',
    '<=',
    1,
  );
}

/** Runs a command under /usr/bin/time: wall seconds and peak RSS. */
async function timed(cmd, args, signal) {
  const r = await runCommand('/usr/bin/time', ['-f', 'THFC-TIME %e %M', cmd, ...args], { signal });
  const m = /THFC-TIME ([\d.]+) (\d+)/.exec(r.stderr);
  if (!m) throw new BenchError('TIME', `no /usr/bin/time line from ${cmd} ${args.join(' ')}`);
  return { seconds: Number(m[1]), maxRssMb: (Number(m[2]) * 1024) / MB };
}

async function vmRssMb(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new BenchError('RSS', `no VmRSS for pid ${pid}`);
  return (Number(m[1]) * 1024) / MB;
}
