// Suite `nbd`: httpstorged's NBD export (issue 16) against its FUSE mount and against `nbdkit curl`.
//
//   warm   `nbdcopy EXPORT null:` with every block cached, against `dd` of the same image through a fresh FUSE
//          mount of the same cache (a fresh mount: no kernel page cache); target FUSE s / NBD s >= 1.5.
//   cold   on each link of the matrix (loopback straight to nginx, then lib.mjs's LINKS: 20 ms / 1 Gbit/s,
//          50 ms / 1 Gbit/s, 50 ms / 100 Mbit/s, each one `thfc-mirror proxy --inject latency=…,bandwidth=…` per
//          copy, one bandwidth budget for all its connections), both sides from the same nginx: `httpstorged nbd`
//          with an empty cache then `nbdcopy EXPORT null:`, against `nbdkit -U - curl RAW-URL --run 'nbdcopy …'`.
//          Both are timed the same way, from the command that starts the server to the end of the copy (what a
//          user waits for); the start (until the export answers) and the copy alone are recorded beside it.
//          Target at 50 ms / 1 Gbit/s: nbdkit total / thfc total >= 20.
//   boot   the test guest to its marker through `thfc-vm boot --via nbd` and `--via fuse`, warm cache, TCG,
//          --snapshot, interleaved; target NBD guest s / FUSE guest s <= 1.0 (medians).
//
// The image: BENCH_NBD_MIB (default 128) MiB, packed into a store; one nginx serves the store (to thfc) and the
// raw image (to nbdkit curl). BENCH_NBD_IMAGE chooses what is in it:
//   random  (default) random data with a zero region in the middle (a quarter): the worst case for thfc, whose
//           blocks do not compress, so the link carries the whole image;
//   ext4    the first BENCH_NBD_MIB MiB of the realistic ext4 test image the mount and pack suites use (lib.mjs
//           ensureTestImage: /usr files; the whole image packs 3.9:1, its first 128 MiB 2.7:1), what a published OS image holds.
// nbdcopy skips zero blocks through base:allocation with thfc; nbdkit curl has no extents and reads them.
// Each figure is the median of BENCH_RUNS runs. The machine is shared and noisy: ratios within one run matter.
// Env: BENCH_NBD_PARTS (comma list of warm, cold, boot, kill; default all), BENCH_NBD_MIB, BENCH_NBD_KILLS.

import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BenchError,
  cliPaths,
  ensureTestImage,
  fileBytes,
  GUEST_TOOLS,
  guestBootArgs,
  LINKS,
  linkSpec,
  MiB,
  median,
  nowSeconds,
  removePath,
  requireBuilt,
  requireTools,
  runCommand,
  startNginx,
  startProcess,
  testGuest,
  unmountFuse,
  waitUntil,
  withWanProxy,
} from './lib.mjs';

export const description =
  'NBD export: warm nbdcopy vs the FUSE mount, cold vs nbdkit curl over a WAN, boot via NBD vs FUSE';

const TOOLS = [['nbdcopy', 'libnbd-bin'], ['nbdkit', 'nbdkit'], ['fusermount', 'fuse3'], ...GUEST_TOOLS];
export const TARGET_WARM = 1.5;
export const TARGET_COLD = 20;
/** The link of the cold target (a key of lib.mjs's LINKS). */
export const TARGET_COLD_LINK = '50ms_1g';
export const TARGET_BOOT = 1.0;
const PARTS = ['warm', 'cold', 'boot', 'kill'];
/** The cold matrix's first row: straight to nginx, no proxy. */
const LOOPBACK = { key: 'loopback', label: 'loopback (no proxy)' };
/** A copy of 128 MiB through nbdkit curl at 100 ms takes minutes; past ten something hangs. */
const COPY_TIMEOUT_MS = 10 * 60 * 1000;

export async function run(ctx) {
  const { results, scratch, signal, table } = ctx;
  await requireTools(TOOLS);
  const cli = cliPaths(ctx.repoRoot);
  await requireBuilt(Object.values(cli));
  const mib = Number(process.env.BENCH_NBD_MIB || 128);
  const parts = new Set((process.env.BENCH_NBD_PARTS || PARTS.join(',')).split(','));
  results.imageMiB = mib;

  const www = join(scratch, 'www');
  const raw = join(www, 'raw');
  await mkdir(raw, { recursive: true });
  const image = join(raw, 'disk.img');
  const kind = process.env.BENCH_NBD_IMAGE || 'random';
  if (kind === 'ext4') await ext4Prefix(ctx, image, mib);
  else if (kind === 'random') await writeImage(image, mib);
  else throw new BenchError('USAGE', `BENCH_NBD_IMAGE: unknown ${kind} (random, ext4)`);
  results.image = kind;
  const store = join(www, 'store');
  await runCommand(process.execPath, [cli.pack, 'pack', image, '--store', store, '--name', 'disk'], { signal });
  results.storeBlockBytes = await fileBytes(join(store, 'blocks'));
  const nginx = await startNginx(ctx, www);
  const daemons = [];
  let n = 0;
  const fresh = (what) => join(scratch, `${what}-${++n}`);
  /** `httpstorged nbd` in the background on a new socket; resolves to its socket and a stop(). */
  const serveNbd = async (url, cache, name = 'disk') => {
    const socket = fresh('nbd.sock');
    const r = await runCommand(
      process.execPath,
      [cli.httpstorged, 'nbd', '--socket', socket, '--cache', cache, '--log', fresh('nbd.log'), `${url}${name}.idx`],
      { signal },
    );
    const pid = Number(/daemon pid (\d+)/.exec(r.stdout)?.[1]);
    if (!pid) throw new BenchError('NBD_START', `httpstorged nbd did not start: ${r.stderr}`);
    daemons.push(pid);
    return { uri: `nbd+unix:///${name}?socket=${socket}`, stop: () => stopPid(pid) };
  };
  const copy = (uri) => runCommand('nbdcopy', [uri, 'null:'], { signal, timeoutMs: COPY_TIMEOUT_MS });

  try {
    const mirrorUrl = `${nginx.base}/store/`;

    // warm: one cache, filled by an untimed copy.
    if (parts.has('warm')) {
      const warmCache = fresh('cache');
      const warm = await serveNbd(mirrorUrl, warmCache);
      await copy(warm.uri);
      const nbdWarm = [];
      const fuseWarm = [];
      for (let i = 0; i < ctx.runs; i++) {
        const t0 = nowSeconds();
        await copy(warm.uri);
        nbdWarm.push(nowSeconds() - t0);
        fuseWarm.push(await fuseRead(cli, mirrorUrl, warmCache, fresh('mnt'), signal));
      }
      await warm.stop();
      results.warm = { nbdSeconds: nbdWarm, fuseSeconds: fuseWarm };
      table.info('warm-nbd', `warm nbdcopy of ${mib} MiB via NBD`, median(nbdWarm), 's');
      table.compare(
        'warm',
        `warm read via FUSE (dd) / via NBD (nbdcopy)`,
        median(fuseWarm),
        median(nbdWarm),
        's',
        '>=',
        TARGET_WARM,
      );
    }

    if (parts.has('cold')) await coldMatrix(ctx, { cli, nginx, serveNbd, copy, mib });

    if (parts.has('boot') || parts.has('kill')) {
      // boot: the test guest via NBD and via FUSE, warm cache, interleaved.
      const guest = await testGuest(ctx);
      const gstore = join(scratch, 'gstore');
      await runCommand(process.execPath, [cli.pack, 'pack', guest.disk, '--store', gstore, '--name', 'guest'], {
        signal,
      });
      const bootCache = fresh('cache');
      const state = fresh('state');
      const boot = async (via) => {
        const report = fresh('report.json');
        await runCommand(
          process.execPath,
          [
            cli.vm,
            '--state-dir',
            state,
            'boot',
            join(gstore, 'guest.idx'),
            '--via',
            via,
            '--cache',
            bootCache,
            ...guestBootArgs(guest),
            '--report',
            report,
          ],
          { signal, timeoutMs: 180_000 },
        );
        const r = JSON.parse(await readFile(report, 'utf8'));
        if (r.outcome !== 'powered-off') throw new BenchError('BOOT', `boot via ${via}: ${r.outcome}`);
        return r.seconds.guest;
      };
      if (parts.has('boot')) {
        await boot('nbd'); // untimed: fills the cache
        const bootNbd = [];
        const bootFuse = [];
        for (let i = 0; i < ctx.runs; i++) {
          for (const via of i % 2 ? ['fuse', 'nbd'] : ['nbd', 'fuse'])
            (via === 'nbd' ? bootNbd : bootFuse).push(await boot(via));
          ctx.log(`boot round ${i + 1}/${ctx.runs}: NBD ${bootNbd[i]} s, FUSE ${bootFuse[i]} s (guest phase)`);
        }
        // Each round's pair ran back to back, so its ratio saw about the same neighbours: the median of those
        // ratios is steadier than the ratio of the medians on a machine whose load swings within a minute.
        const pairs = bootNbd.map((s, i) => s / bootFuse[i]);
        results.boot = { nbdGuestSeconds: bootNbd, fuseGuestSeconds: bootFuse, pairRatios: pairs };
        table.info('boot.pairs', "boot: median of the rounds' NBD / FUSE ratios", median(pairs), '');
        table.compare(
          'boot',
          'boot to marker (guest phase) via NBD / via FUSE',
          median(bootNbd),
          median(bootFuse),
          's',
          '<=',
          TARGET_BOOT,
        );
      }

      // kill: BENCH_NBD_KILLS boots via NBD over a 20 ms link, each with httpstorged killed (SIGKILL) once the guest
      // has made 10 disk reads and started again on the same socket and cache; then the whole image is read back
      // through the boot's cache over the same link and compared byte for byte.
      if (parts.has('kill')) {
        const kills = Number(process.env.BENCH_NBD_KILLS || 10);
        const gmirror = startProcess(
          process.execPath,
          [cli.mirror, 'serve', gstore, '--listen', '127.0.0.1:0', '--no-access-log'],
          { stdin: 'ignore' },
        );
        try {
          const gurl = (await gmirror.waitFor(/serving \S+ on (http:\/\/\S+)/, 30_000))[1];
          const { value: outcome } = await withWanProxy(cli.mirror, gurl, 'latency=20ms', async (url) => {
            const runs = [];
            for (let i = 0; i < kills; i++) runs.push(await killedBoot(i));
            return runs;

            async function killedBoot(i) {
              const cache = fresh('cache');
              const kstate = fresh('state');
              const flags = ['--cache', cache, '--no-prefetch', '--readahead', '0'];
              const vm = startProcess(
                process.execPath,
                [
                  cli.vm,
                  '--state-dir',
                  kstate,
                  'boot',
                  `${url}guest.idx`,
                  '--via',
                  'nbd',
                  ...flags,
                  ...guestBootArgs(guest),
                ],
                { stdin: 'ignore' },
              );
              const socket = await waitUntil(
                async () => {
                  const run = (await readdir(kstate).catch(() => [])).find((e) => e.startsWith('run-'));
                  const path = run && join(kstate, run, 'nbd.sock');
                  return path && existsSync(path) ? path : undefined;
                },
                { timeoutMs: 60_000, what: 'the NBD socket' },
              );
              const stats = async () =>
                JSON.parse((await runCommand(process.execPath, [cli.httpstorged, 'stats', socket, '--json'])).stdout);
              await waitUntil(async () => (await stats()).images[0].reads >= 10, {
                timeoutMs: 60_000,
                what: 'disk reads',
              });
              const killed = await stats();
              const markerBefore = vm.output().stdout.includes(guest.markerLine);
              process.kill(killed.pid, 'SIGKILL');
              await new Promise((r) => setTimeout(r, 300));
              const again = await runCommand(process.execPath, [
                cli.httpstorged,
                'nbd',
                '--socket',
                socket,
                ...flags,
                '--log',
                fresh('nbd.log'),
                `${url}guest.idx`,
              ]);
              const pid = Number(/daemon pid (\d+)/.exec(again.stdout)?.[1]);
              daemons.push(pid);
              await vm.exited;
              const reachedMarker = vm.output().stdout.includes(guest.markerLine);
              await stopPid(pid);
              // The whole image through the boot's cache, over the same link, against the original.
              const check = await serveNbd(url, cache, 'guest');
              const copyFile = fresh('copy.img');
              await runCommand('nbdcopy', [check.uri, copyFile], { signal, timeoutMs: COPY_TIMEOUT_MS });
              await check.stop();
              // cmp -l lists one line per differing byte; wc counts them (a pipeline exits with wc's status).
              const cmp = await runCommand('sh', ['-c', 'cmp -l "$0" "$1" | wc -l', guest.disk, copyFile], { signal });
              // A copy of another length is wrong by the difference too (cmp -l stops at the shorter file's end).
              const lengths = await Promise.all([guest.disk, copyFile].map(async (f) => (await stat(f)).size));
              const wrongBytes = Number(cmp.stdout.trim()) + Math.abs(lengths[0] - lengths[1]);
              await removePath(copyFile);
              ctx.log(
                `kill ${i + 1}/${kills}: marker ${reachedMarker ? 'reached' : 'NOT reached'}, ${wrongBytes} wrong bytes`,
              );
              return { killedAfterReads: killed.images[0].reads, markerBefore, reachedMarker, wrongBytes };
            }
          });
          results.kills = outcome;
          const reached = outcome.filter((k) => k.reachedMarker && !k.markerBefore).length;
          const wrong = outcome.reduce((a, k) => a + k.wrongBytes, 0);
          table.compare(
            'kill-boots',
            'boots reaching the marker after SIGKILL + restart',
            reached,
            kills,
            'boots',
            '==',
            1,
          );
          table.compare('kill-wrong', 'wrong bytes in the full compares afterwards', wrong, 1, 'B', '==', 0);
        } finally {
          await gmirror.stop();
        }
      }
    }
  } finally {
    for (const pid of daemons) await stopPid(pid);
    await nginx.proc.stop();
  }
}

/**
 * Cold copies on each link (LOOPBACK, then LINKS), ctx.runs rounds interleaving links and sides. Each side is
 * timed from the command that starts its server to the end of nbdcopy; `start` is until the export answers
 * (httpstorged returns once it is ready; nbdkit's --run command begins once it is), `copy` the rest.
 */
async function coldMatrix(ctx, { cli, nginx, serveNbd, copy, mib }) {
  const { results, scratch, signal, table } = ctx;
  const links = [LOOPBACK, ...LINKS];
  const cells = Object.fromEntries(links.map((l) => [l.key, { thfc: [], nbdkit: [] }]));
  results.cold = { cells };
  let n = 0;
  /** fn(base URL of nginx's root), through a fresh proxy emulating `link` unless it is LOOPBACK. */
  const over = async (link, fn) =>
    link === LOOPBACK
      ? fn(`${nginx.base}/`)
      : (await withWanProxy(cli.mirror, `${nginx.base}/`, linkSpec(link), fn)).value;
  for (let round = 0; round < ctx.runs; round++) {
    for (const link of links) {
      ctx.log(`cold round ${round + 1}/${ctx.runs}, ${link.label}: thfc NBD, nbdkit curl`);
      const thfc = await over(link, async (base) => {
        const t0 = nowSeconds();
        const d = await serveNbd(`${base}store/`, join(scratch, `cache-cold-${++n}`));
        const t1 = nowSeconds();
        await copy(d.uri);
        const t2 = nowSeconds();
        await d.stop();
        return { start: t1 - t0, copy: t2 - t1, total: t2 - t0 };
      });
      const peer = await over(link, async (base) => {
        const mark = join(scratch, `nbdkit-start-${++n}`);
        // Wall-clock seconds on both sides of the mark: it is written by `date` in nbdkit's --run shell.
        const t0 = Date.now() / 1000;
        await runCommand(
          'nbdkit',
          ['-U', '-', 'curl', `${base}raw/disk.img`, '--run', `date +%s.%N > ${mark}; exec nbdcopy "$uri" null:`],
          { signal, timeoutMs: COPY_TIMEOUT_MS },
        );
        const t2 = Date.now() / 1000;
        const t1 = Number((await readFile(mark, 'utf8')).trim());
        return { start: t1 - t0, copy: t2 - t1, total: t2 - t0 };
      });
      cells[link.key].thfc.push(thfc);
      cells[link.key].nbdkit.push(peer);
    }
  }
  const med = (runs, what) => median(runs.map((r) => r[what]));
  const matrix = links.map((link) => {
    const c = cells[link.key];
    const limit = link.rate ? results.storeBlockBytes / link.rate : Number.NaN;
    return {
      link: link.label,
      key: link.key,
      thfc: { start: med(c.thfc, 'start'), copy: med(c.thfc, 'copy'), total: med(c.thfc, 'total') },
      nbdkit: { start: med(c.nbdkit, 'start'), copy: med(c.nbdkit, 'copy'), total: med(c.nbdkit, 'total') },
      linkLimitSeconds: limit,
    };
  });
  results.coldMatrix = matrix;
  for (const r of matrix) {
    const label = `cold ${mib} MiB on ${r.link}: nbdkit curl / thfc NBD, server start included`;
    if (r.key === TARGET_COLD_LINK)
      table.compare(`cold.${r.key}`, label, r.nbdkit.total, r.thfc.total, 's', '>=', TARGET_COLD);
    else table.info(`cold.${r.key}`, label, r.nbdkit.total, 's', r.thfc.total);
    table.info(
      `cold.${r.key}.copy`,
      `cold on ${r.link}: the copies alone, nbdkit / thfc`,
      r.nbdkit.copy,
      's',
      r.thfc.copy,
    );
    table.info(`cold.${r.key}.start`, `cold on ${r.link}: thfc daemon start (index loaded)`, r.thfc.start, 's');
  }
  const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
  ctx.log('cold matrix (seconds, medians; start + copy = total; link limit = store blocks / rate):');
  ctx.log(
    '| link | thfc start | thfc copy | thfc total | nbdkit start | nbdkit copy | nbdkit total | ratio | link limit |',
  );
  for (const r of matrix)
    ctx.log(
      `| ${r.link} | ${f(r.thfc.start)} | ${f(r.thfc.copy)} | ${f(r.thfc.total)} | ${f(r.nbdkit.start)} | ` +
        `${f(r.nbdkit.copy)} | ${f(r.nbdkit.total)} | ${(r.nbdkit.total / r.thfc.total).toFixed(1)}× | ${f(r.linkLimitSeconds)} |`,
    );
}

/** BENCH_NBD_MIB of random bytes, the middle quarter zeros. */
async function writeImage(path, mib) {
  const out = createWriteStream(path);
  for (let i = 0; i < mib; i++) {
    const zero = i >= (mib * 3) / 8 && i < (mib * 5) / 8;
    if (!out.write(zero ? Buffer.alloc(MiB) : randomBytes(MiB))) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r, j) => out.end((e) => (e ? j(e) : r())));
}

/** The first `mib` MiB of the realistic ext4 test image (built once and cached, as the mount suite's). */
async function ext4Prefix(ctx, path, mib) {
  const src = await ensureTestImage({
    cacheDir: join(ctx.dir, 'cache'),
    reuseDirs: [join(ctx.dir, '..', 'mount', 'cache'), join(ctx.dir, '..', 'pack', 'cache')],
    signal: ctx.signal,
    log: ctx.log,
  });
  if (src.bytes < mib * MiB) throw new BenchError('USAGE', `BENCH_NBD_MIB ${mib}: the ext4 image has ${src.bytes} B`);
  await runCommand('dd', [`if=${src.path}`, `of=${path}`, 'bs=1M', `count=${mib}`, 'status=none'], {
    signal: ctx.signal,
  });
}

/** Seconds for `dd` of the image through a fresh FUSE mount of `cache` (so no kernel page cache holds it). */
async function fuseRead(cli, url, cache, mnt, signal) {
  await mkdir(mnt);
  await runCommand(
    process.execPath,
    [cli.httpstorged, mnt, `${url}disk.idx`, '--cache', cache, '--log', `${mnt}.log`],
    {
      signal,
    },
  );
  try {
    const t0 = nowSeconds();
    await runCommand('dd', [`if=${join(mnt, 'disk')}`, 'of=/dev/null', 'bs=1M'], {
      signal,
      timeoutMs: COPY_TIMEOUT_MS,
    });
    return nowSeconds() - t0;
  } finally {
    await runCommand(process.execPath, [cli.httpstorged, 'umount', mnt], { timeoutMs: 30_000 }).catch(() =>
      unmountFuse(mnt),
    );
  }
}

/** SIGTERM, and wait (bounded) for the process to go. */
async function stopPid(pid) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}
