// Suite `pack`: thfc-pack against the two things a publisher could use instead.
//
//   baseline A  `cat IMG | tee >(sha1sum) | zstd -3 -T0`: hash + compress the stream, the floor for any packer
//   baseline B  `casync make --compression=zstd --store=DIR out.caibx IMG`: the closest existing tool
//   thfc        `node packages/packer/dist/cli.js pack IMG --store DIR --name bench --json`
//
// All three run on the same cached ext4 image, interleaved, ctx.runs times each (median).
// Then: a republish with 1 % of the blocks changed (new bytes vs the compressed size of the
// change), and zstd-napi's in-process speed and ratio on a sample of the image's blocks (the
// native-vs-wasm comparison that chose zstd-napi is recorded in docs/PERFORMANCE.md).
//
// Targets (ratios taken in the same run; the machine is ±30 % noisy between runs):
//   thfc MB/s >= 2 × casync MB/s;  thfc store <= 1.1 × casync store;  thfc MB/s >= 0.75 × pipeline MB/s;
//   republish new bytes <= 1.1 × zstd -3 of the changed blocks.

import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  BenchError,
  ensureTestImage,
  fileBytes,
  KiB,
  listFiles,
  MB,
  median,
  newFiles,
  nowSeconds,
  removePath,
  requireFromRoot,
  requireTools,
  runCommand,
  THFC_CLIS,
  waitForQuiet,
} from './lib.mjs';

export const description =
  'thfc-pack MB/s and store size vs `zstd -3 -T0 | sha1sum` and `casync make`; 1 % republish cost; zstd-napi speed';

/** The packer's default block size (format DEFAULT_BLOCK_SIZE); zero and republish accounting use the same grid. */
const BLOCK_SIZE = 256 * KiB;
/** zstd's default level, and the packer's default codec (format DEFAULT_CODEC). */
const ZSTD_LEVEL = 3;

/** Republish changes 1 % of the blocks: a typical security update to a base image. */
const CHANGE_FRACTION = 0.01;
/** Fixed so every run changes the same blocks in the same way. */
const SEED = 20261127;
/** zstd sample: every 8th non-zero block (~50-60 MB of the test image). */
const SAMPLE_EVERY = 8;

/** Fields the bench reads from `thfc-pack pack --json`. */
const THFC_JSON_FIELDS = [
  'name',
  'index',
  'blocks',
  'zeroBlocks',
  'uniqueBlocks',
  'newBlocks',
  'bytesIn',
  'storedBytes',
  'newBytes',
  'seconds',
  'mbPerSecond',
  'digest',
];

const TOOLS = [
  ['bash', 'bash'],
  ['cat', 'coreutils'],
  ['tee', 'coreutils'],
  ['sha1sum', 'coreutils'],
  ['cp', 'coreutils'],
  ['truncate', 'coreutils'],
  ['du', 'coreutils'],
  ['sync', 'coreutils'],
  ['zstd', 'zstd'],
  ['casync', 'casync'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['dumpe2fs', 'e2fsprogs'],
];

/** Hashes and compresses the stream on all cores; `>(…)` is waited for because runCommand waits for stdio 'close'. */
const PIPELINE = `set -o pipefail; cat "$1" | tee >(sha1sum >/dev/null) | zstd -${ZSTD_LEVEL} -T0 -q -c >/dev/null`;

export async function run(ctx) {
  const { table, results, scratch, signal } = ctx;
  await requireTools(TOOLS);
  const zstd = requireFromRoot('zstd-napi/binding.js');
  const cli = await locateCli(ctx);
  results.thfcCli = cli;

  // The realistic ext4 test image (lib.mjs; cached in this suite's directory, which the other suites reuse).
  const image = await ensureTestImage({ cacheDir: join(ctx.dir, 'cache'), signal, log: ctx.log });
  ctx.log(`reading ${image.path} into memory (this also page-caches it for the timed runs)`);
  const img = await readFile(image.path);
  const analysis = analyseImage(img, zstd);
  results.image = { ...image, ...analysis, nonZeroIndexes: undefined };
  const blocksTotal = analysis.blocks;

  table.info(
    'image.size',
    `image: ext4, ${blocksTotal} × 256 KiB blocks${image.cached ? ' (cached)' : ''}`,
    img.length,
    'MB',
  );
  table.info('image.zero', 'image: all-zero blocks (% of blocks)', (100 * analysis.zeroBlocks) / blocksTotal, '%');
  table.info('image.unique', 'image: distinct non-zero blocks', analysis.uniqueBlocks);
  table.info('image.ideal', 'ideal store: zstd-napi L3 per distinct block', analysis.idealStoreBytes, 'MB');

  // --- Throughput and store size, interleaved so drift hits all three alike -------------------------
  const imageMB = img.length / MB;
  const pipeline = { seconds: [] };
  const casync = { seconds: [], storeBytes: [], chunkBytes: [], indexBytes: [], chunkFiles: [] };
  const thfc = { seconds: [], storeBytes: [], blockBytes: [], indexBytes: [], reports: [] };
  results.pipeline = pipeline;
  results.casync = casync;
  results.thfc = thfc;
  let casyncStore;
  let thfcStore;
  let thfcError = cli.error;

  results.quiet = {};
  const quiet = async (phase) => {
    results.quiet[phase] = await waitForQuiet({ signal, log: ctx.log });
  };
  for (let i = 0; i < ctx.runs; i++) {
    await quiet(`round${i + 1}`);
    ctx.log(`throughput run ${i + 1}/${ctx.runs}`);
    await runCommand('sync', [], { signal });
    const p = await runCommand('bash', ['-c', PIPELINE, 'bash', image.path], { signal });
    pipeline.seconds.push(p.seconds);

    if (casyncStore) await Promise.all([removePath(casyncStore.dir), removePath(casyncStore.index)]);
    casyncStore = { dir: join(scratch, `casync-${i}.castr`), index: join(scratch, `casync-${i}.caibx`) };
    await runCommand('sync', [], { signal });
    const c = await runCommand(
      'casync',
      ['make', '--compression=zstd', `--store=${casyncStore.dir}`, casyncStore.index, image.path],
      { signal },
    );
    const chunks = await listFiles(casyncStore.dir);
    const chunkBytes = sum(chunks.values());
    const caibxBytes = (await stat(casyncStore.index)).size;
    casync.seconds.push(c.seconds);
    casync.chunkFiles.push(chunks.size);
    casync.chunkBytes.push(chunkBytes);
    casync.indexBytes.push(caibxBytes);
    casync.storeBytes.push(chunkBytes + caibxBytes);

    if (thfcError) continue;
    if (thfcStore) await removePath(thfcStore);
    thfcStore = join(scratch, `thfc-${i}`);
    try {
      await runCommand('sync', [], { signal });
      const { report, seconds } = await thfcPack(ctx, cli.path, image.path, thfcStore, 'bench');
      const blockBytes = await fileBytes(join(thfcStore, 'blocks'));
      const indexBytes = await indexFileBytes(ctx, thfcStore, report);
      thfc.seconds.push(seconds);
      thfc.reports.push(report);
      thfc.blockBytes.push(blockBytes);
      thfc.indexBytes.push(indexBytes);
      thfc.storeBytes.push(blockBytes + indexBytes);
    } catch (e) {
      if (signal.aborted) throw e;
      thfcError = e.message;
      thfcStore = undefined;
    }
  }

  pipeline.mbps = pipeline.seconds.map((s) => imageMB / s);
  casync.mbps = casync.seconds.map((s) => imageMB / s);
  const pipelineMBps = median(pipeline.mbps);
  const casyncMBps = median(casync.mbps);
  const casyncStoreBytes = median(casync.storeBytes);
  table.info('pipeline.mbps', `zstd -${ZSTD_LEVEL} -T0 + sha1sum pipeline`, pipelineMBps, 'MB/s');
  table.info('casync.mbps', 'casync make --compression=zstd', casyncMBps, 'MB/s');
  table.info('casync.store', 'casync store (chunk files + .caibx)', casyncStoreBytes, 'MB', analysis.idealStoreBytes);
  results.casync.chunkStoreDuSb = await duApparent(casyncStore.dir);

  if (thfcError) {
    table.error('thfc.vs_casync', 'thfc pack MB/s vs casync', firstLine(thfcError));
    table.error('thfc.vs_pipeline', 'thfc pack MB/s vs pipeline', 'no thfc measurement');
    table.error('thfc.store', 'thfc store vs casync store', 'no thfc measurement');
  } else {
    thfc.mbps = thfc.seconds.map((s) => imageMB / s);
    thfc.cliMbps = thfc.reports.map((r) => r.mbPerSecond);
    const thfcMBps = median(thfc.mbps);
    const thfcStoreBytes = median(thfc.storeBytes);
    const last = thfc.reports.at(-1);
    // Each round's ratio pairs runs taken seconds apart: less sensitive to drift than the ratio of medians.
    results.perRoundRatios = {
      thfcVsCasync: thfc.mbps.map((v, k) => v / casync.mbps[k]),
      thfcVsPipeline: thfc.mbps.map((v, k) => v / pipeline.mbps[k]),
    };
    table.compare('thfc.vs_casync', 'thfc pack MB/s vs casync', thfcMBps, casyncMBps, 'MB/s', '>=', 2);
    table.compare('thfc.vs_pipeline', 'thfc pack MB/s vs pipeline', thfcMBps, pipelineMBps, 'MB/s', '>=', 0.75);
    table.compare(
      'thfc.store',
      'thfc store (blocks/ + .idx) vs casync',
      thfcStoreBytes,
      casyncStoreBytes,
      'MB',
      '<=',
      1.1,
    );
    table.info('thfc.store_vs_ideal', 'thfc store vs ideal store', thfcStoreBytes, 'MB', analysis.idealStoreBytes);
    table.info('thfc.index', 'thfc .idx size', median(thfc.indexBytes), 'B');
    table.info('thfc.cli_mbps', 'thfc MB/s as reported by --json (info)', median(thfc.cliMbps), 'MB/s', thfcMBps);
    // Cross-checks of the CLI's own accounting against what the harness counted.
    table.compare('thfc.blocks', 'thfc --json blocks vs harness', last.blocks, blocksTotal, '', '==', 1);
    table.compare('thfc.zero', 'thfc --json zeroBlocks vs harness', last.zeroBlocks, analysis.zeroBlocks, '', '==', 1);
    table.compare(
      'thfc.unique',
      'thfc --json uniqueBlocks vs harness',
      last.uniqueBlocks,
      analysis.uniqueBlocks,
      '',
      '==',
      1,
    );
    table.compare(
      'thfc.stored',
      'thfc --json storedBytes vs blocks/ on disk',
      last.storedBytes,
      median(thfc.blockBytes),
      'B',
      '==',
      1,
    );
  }

  // --- Republish: 1 % of the blocks changed, packed into the store that holds the original ----------
  if (!thfcError) {
    try {
      await quiet('republish');
      results.republish = await republish(ctx, { img, image, analysis, zstd, cli, thfcStore, casyncStore });
    } catch (e) {
      if (signal.aborted) throw e;
      thfcError = e.message;
      table.error('republish', 'republish (1 % blocks changed)', firstLine(e.message));
    }
  } else {
    table.error('republish', 'republish (1 % blocks changed)', 'no thfc measurement');
  }

  // --- zstd-napi, in this process ------------------------------------------------------------------
  await quiet('zstd');
  results.zstd = await measureZstd(ctx, img, analysis, zstd);

  const phases = Object.values(results.quiet);
  table.info(
    'host.busy',
    'other work on the cores before timed phases (max %)',
    100 * Math.max(...phases.map((q) => q.busy)),
    '%',
  );
  if (phases.some((q) => !q.quiet)) ctx.log('WARNING: some phases ran on a busy machine (see results.quiet)');

  if (thfcError) throw new BenchError('THFC_FAILED', `thfc measurements missing:\n${thfcError}`);
}

// ---------------------------------------------------------------------------------------------------
// thfc CLI

/**
 * $THFC_PACK_CLI overrides the path, e.g. to measure another build against the same baselines.
 * A build is stale when a package's src/ has a file newer than everything in its dist/ (tsc -b
 * rewrites only the outputs that changed, so cli.js alone would give false alarms).
 */
async function locateCli(ctx) {
  const shown = process.env.THFC_PACK_CLI || THFC_CLIS.pack;
  const path = resolve(ctx.repoRoot, shown);
  try {
    await stat(path);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    return {
      path,
      error: `thfc-pack CLI not found at ${shown}: build it first with \`npx tsc -b\` (npm run build) in ${ctx.repoRoot}`,
    };
  }
  const stalePackages = [];
  for (const pkg of ['format', 'packer']) {
    const dir = join(ctx.repoRoot, 'packages', pkg);
    if ((await newestMtime(join(dir, 'src'))) > (await newestMtime(join(dir, 'dist')))) stalePackages.push(pkg);
  }
  if (stalePackages.length) {
    ctx.log(
      `WARNING: dist/ of ${stalePackages.join(', ')} is older than src/; run \`npx tsc -b\` to measure current code`,
    );
  }
  return { path, stale: stalePackages.length > 0, stalePackages };
}

async function newestMtime(dir) {
  let newest = 0;
  for (const ent of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!ent.isFile()) continue;
    const st = await stat(join(ent.parentPath ?? ent.path, ent.name));
    newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

/** One `thfc-pack pack --json` run; wall time is measured here, not taken from the report. */
async function thfcPack(ctx, cliPath, imagePath, store, name) {
  const args = [cliPath, 'pack', imagePath, '--store', store, '--name', name, '--json'];
  const { stdout, seconds } = await runCommand(process.execPath, args, { cwd: ctx.scratch, signal: ctx.signal });
  const report = parseReport(stdout);
  const missing = THFC_JSON_FIELDS.filter((f) => !(f in report));
  if (missing.length) ctx.log(`WARNING: thfc-pack --json lacks field(s): ${missing.join(', ')}`);
  return { report, seconds };
}

function parseReport(stdout) {
  const text = stdout.trim();
  try {
    return JSON.parse(text);
  } catch {
    // Tolerate log lines around the report, but say so if there is no report at all.
    const line = text
      .split('\n')
      .reverse()
      .find((l) => l.trim().startsWith('{'));
    if (line) return JSON.parse(line);
    throw new BenchError('BAD_REPORT', `thfc-pack --json printed no JSON object; stdout was:\n${text.slice(0, 2000)}`);
  }
}

/** Size of the index the report names (relative paths are relative to the CLI's cwd), else STORE/NAME.idx. */
async function indexFileBytes(ctx, store, report) {
  const path = report.index ? resolve(ctx.scratch, report.index) : join(store, `${report.name}.idx`);
  try {
    return (await stat(path)).size;
  } catch (e) {
    throw new BenchError('NO_INDEX', `thfc-pack reported index ${report.index} but ${path} does not exist (${e.code})`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Test image analysis (the image itself: lib.mjs ensureTestImage)

/** Zero blocks, distinct non-zero blocks (by SHA-1), and the ideal store: each distinct block at zstd L3. */
function analyseImage(img, zstd) {
  const zero = Buffer.alloc(BLOCK_SIZE);
  const cctx = new zstd.CCtx();
  const dst = Buffer.allocUnsafe(zstd.compressBound(BLOCK_SIZE));
  const seen = new Set();
  const nonZeroIndexes = [];
  let zeroBlocks = 0;
  let idealStoreBytes = 0;
  const whole = createHash('sha1');
  const blocks = Math.ceil(img.length / BLOCK_SIZE);
  for (let i = 0; i < blocks; i++) {
    const block = img.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
    whole.update(block);
    if (block.equals(zero.subarray(0, block.length))) {
      zeroBlocks++;
      continue;
    }
    nonZeroIndexes.push(i);
    const id = createHash('sha1').update(block).digest('hex');
    if (seen.has(id)) continue;
    seen.add(id);
    idealStoreBytes += cctx.compress(dst, block, ZSTD_LEVEL);
  }
  return {
    blockSize: BLOCK_SIZE,
    blocks,
    zeroBlocks,
    nonZeroBlocks: nonZeroIndexes.length,
    uniqueBlocks: seen.size,
    idealStoreBytes,
    sha1: whole.digest('hex'),
    nonZeroIndexes,
  };
}

// ---------------------------------------------------------------------------------------------------
// Republish

async function republish(ctx, { img, image, analysis, zstd, cli, thfcStore, casyncStore }) {
  const { table, scratch, signal } = ctx;
  const rng = mulberry32(SEED);
  const count = Math.max(1, Math.round(analysis.blocks * CHANGE_FRACTION));
  const changed = pickDistinct(analysis.nonZeroIndexes, count, rng).sort((a, b) => a - b);
  const vocabulary = makeVocabulary(rng);
  const cctx = new zstd.CCtx();
  const dst = Buffer.allocUnsafe(zstd.compressBound(BLOCK_SIZE));

  ctx.log(`republish: changing ${changed.length} of ${analysis.blocks} blocks (seed ${SEED})`);
  const modified = join(scratch, 'republish.img');
  await runCommand('cp', ['--sparse=never', image.path, modified], { signal });
  let expectedBytes = 0;
  const fh = await open(modified, 'r+');
  try {
    for (const i of changed) {
      const block = makeText(rng, vocabulary, BLOCK_SIZE);
      expectedBytes += cctx.compress(dst, block, ZSTD_LEVEL);
      await fh.write(block, 0, BLOCK_SIZE, i * BLOCK_SIZE);
    }
  } finally {
    await fh.close();
  }

  const before = await listFiles(join(thfcStore, 'blocks'));
  await runCommand('sync', [], { signal });
  const { report, seconds } = await thfcPack(ctx, cli.path, modified, thfcStore, 'bench-republish');
  const after = await listFiles(join(thfcStore, 'blocks'));
  const diff = newFiles(before, after);
  const indexBytes = await indexFileBytes(ctx, thfcStore, report);

  const casyncIndex = join(scratch, 'republish.caibx');
  const casyncBefore = await listFiles(casyncStore.dir);
  await runCommand('casync', ['make', '--compression=zstd', `--store=${casyncStore.dir}`, casyncIndex, modified], {
    signal,
  });
  const casyncDiff = newFiles(casyncBefore, await listFiles(casyncStore.dir));
  const casyncIndexBytes = (await stat(casyncIndex)).size;
  await removePath(modified);

  const what = `${changed.length} blocks changed`;
  table.info('republish.expected', `republish: zstd -${ZSTD_LEVEL} of the ${what}`, expectedBytes, 'MB');
  table.compare(
    'republish.json',
    'republish: newBytes (--json) vs expected',
    report.newBytes,
    expectedBytes,
    'MB',
    '<=',
    1.1,
  );
  table.compare(
    'republish.diff',
    'republish: new files in blocks/ vs expected',
    diff.bytes,
    expectedBytes,
    'MB',
    '<=',
    1.1,
  );
  table.compare(
    'republish.diff_idx',
    'republish: new files in blocks/ + new .idx vs expected',
    diff.bytes + indexBytes,
    expectedBytes,
    'MB',
    '<=',
    1.1,
  );
  table.compare(
    'republish.blocks',
    'republish: newBlocks (--json) vs changed',
    report.newBlocks,
    changed.length,
    '',
    '==',
    1,
  );
  table.compare('republish.files', 'republish: new block files vs changed', diff.count, changed.length, '', '==', 1);
  table.info(
    'republish.casync',
    'republish: casync new chunks + .caibx (info)',
    casyncDiff.bytes + casyncIndexBytes,
    'MB',
    expectedBytes,
  );
  table.info('republish.mbps', 'republish: thfc pack MB/s into a full store', img.length / MB / seconds, 'MB/s');

  return {
    seed: SEED,
    changedBlocks: changed,
    expectedBytes,
    rawChangedBytes: changed.length * BLOCK_SIZE,
    seconds,
    report,
    newBlockFiles: diff.count,
    newBlockBytes: diff.bytes,
    indexBytes,
    casync: { newChunkFiles: casyncDiff.count, newChunkBytes: casyncDiff.bytes, indexBytes: casyncIndexBytes },
  };
}

/** mulberry32: a tiny seeded PRNG; deterministic across runs and Node versions. Returns floats in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` distinct elements of `items`, chosen by a partial Fisher-Yates shuffle. */
function pickDistinct(items, count, rng) {
  const a = [...items];
  const n = Math.min(count, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}

function makeVocabulary(rng, size = 4096) {
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const words = [];
  for (let w = 0; w < size; w++) {
    const len = 2 + Math.floor(rng() * 9);
    let word = '';
    // Squaring skews towards common letters, as in real text.
    for (let k = 0; k < len; k++) word += letters[Math.floor(rng() ** 2 * letters.length)];
    words.push(word);
  }
  return words;
}

/** Random text from a fixed vocabulary: compressible like prose (~2-3× at zstd -3), but never seen before. */
function makeText(rng, vocabulary, size) {
  const parts = [];
  let length = 0;
  while (length < size) {
    const line = [];
    const n = 6 + Math.floor(rng() * 10);
    for (let k = 0; k < n; k++) line.push(vocabulary[Math.floor(rng() * vocabulary.length)]);
    const text = `${line.join(' ')}\n`;
    parts.push(text);
    length += text.length;
  }
  return Buffer.from(parts.join(''), 'latin1').subarray(0, size);
}

// ---------------------------------------------------------------------------------------------------
// zstd-napi

async function measureZstd(ctx, img, analysis, zstd) {
  const { table, signal } = ctx;
  const sample = analysis.nonZeroIndexes
    .filter((_, k) => k % SAMPLE_EVERY === 0)
    .map((i) => img.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  const sampleMB = (sample.length * BLOCK_SIZE) / MB;
  ctx.log(`zstd: ${sample.length} blocks (${sampleMB.toFixed(1)} MB), level ${ZSTD_LEVEL}, ${ctx.runs} rounds`);

  const cctx = new zstd.CCtx();
  const dctx = new zstd.DCtx();
  const dst = Buffer.allocUnsafe(zstd.compressBound(BLOCK_SIZE));
  const out = Buffer.allocUnsafe(BLOCK_SIZE);
  const r = { blocks: sample.length, sampleBytes: sample.length * BLOCK_SIZE, level: ZSTD_LEVEL };
  r.napi = { compressMBps: [], decompressMBps: [], compressedBytes: 0 };
  const time = (fn) => {
    const t0 = nowSeconds();
    const v = fn();
    return { v, mbps: sampleMB / (nowSeconds() - t0) };
  };

  for (let round = 0; round < ctx.runs; round++) {
    const nc = time(() => sample.map((b) => Buffer.from(dst.subarray(0, cctx.compress(dst, b, ZSTD_LEVEL)))));
    const nd = time(() => {
      for (const c of nc.v) if (dctx.decompress(out, c) !== BLOCK_SIZE) throw new Error('zstd-napi: short output');
    });
    await yieldToEventLoop();
    if (signal.aborted) throw new BenchError('ABORTED', 'interrupted');
    r.napi.compressMBps.push(nc.mbps);
    r.napi.decompressMBps.push(nd.mbps);
    if (round === 0) {
      // Untimed: every block round-trips exactly.
      for (let k = 0; k < sample.length; k++) {
        const a = nc.v[k];
        if (dctx.decompress(out, a) !== BLOCK_SIZE || !out.equals(sample[k])) {
          throw new BenchError('ZSTD_MISMATCH', `zstd round trip differs on sample block ${k}`);
        }
        r.napi.compressedBytes += a.length;
      }
    }
  }
  r.napi.compressMedian = median(r.napi.compressMBps);
  r.napi.decompressMedian = median(r.napi.decompressMBps);
  r.napi.ratio = r.sampleBytes / r.napi.compressedBytes;
  const label = `zstd L${ZSTD_LEVEL} (zstd-napi)`;
  table.info('zstd.compress', `${label} compress`, r.napi.compressMedian, 'MB/s');
  table.info('zstd.decompress', `${label} decompress`, r.napi.decompressMedian, 'MB/s');
  table.info('zstd.ratio', `${label} compression ratio`, r.napi.ratio, 'x');
  return r;
}

function sum(values) {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

function firstLine(text) {
  return String(text).split('\n')[0];
}

/** `du -sb`: apparent size including directory inodes, recorded next to the file-only sum for comparison. */
async function duApparent(dir) {
  const { stdout } = await runCommand('du', ['-sb', dir]);
  return Number(stdout.split(/\s/)[0]);
}
