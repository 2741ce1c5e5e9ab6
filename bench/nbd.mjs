// Suite `nbd`: httpstorged's NBD export (issue 16) against its FUSE mount and against `nbdkit curl`.
//
//   warm   `nbdcopy EXPORT null:` with every block cached, against `dd` of the same image through a fresh FUSE
//          mount of the same cache (a fresh mount: no kernel page cache); target FUSE s / NBD s >= 1.5.
//   cold   at each RTT (BENCH_NBD_RTTS, default 0,50; one `thfc-mirror proxy --inject latency=RTTms` per copy):
//          `httpstorged nbd` with an empty cache, then `nbdcopy` to null:, from the daemon's start; against
//          `nbdkit curl` of the raw image on a static server behind the same kind of proxy, from nbdkit's
//          start (`nbdkit -U - curl URL --run 'nbdcopy "$uri" null:'`). Target at 50 ms: nbdkit s / thfc s >= 20.
//   boot   the test guest to its marker through `thfc-vm boot --via nbd` and `--via fuse`, warm cache, TCG,
//          --snapshot, interleaved; target NBD guest s / FUSE guest s <= 1.0 (medians).
//
// The image: BENCH_NBD_MIB (default 128) of random data with a zero region in the middle (a quarter), packed
// into a store served by `thfc-mirror serve`; the raw image is served by a plain range-capable server for nbdkit.
// nbdcopy skips the zero region through base:allocation with thfc; nbdkit curl has no extents and reads it.
// Each figure is the median of BENCH_RUNS runs. The machine is shared and noisy: ratios within one run matter.

import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BenchError,
  GUEST_MEM_MIB,
  GUEST_TOOLS,
  MiB,
  median,
  nowSeconds,
  removePath,
  requireBuilt,
  requireTools,
  runCommand,
  serveStatic,
  startProcess,
  testGuest,
  unmountFuse,
  waitUntil,
} from './lib.mjs';

export const description =
  'NBD export: warm nbdcopy vs the FUSE mount, cold vs nbdkit curl over a WAN, boot via NBD vs FUSE';

const TOOLS = [['nbdcopy', 'libnbd-bin'], ['nbdkit', 'nbdkit'], ['fusermount', 'fuse3'], ...GUEST_TOOLS];
export const TARGET_WARM = 1.5;
export const TARGET_COLD = 20;
export const TARGET_COLD_RTT_MS = 50;
export const TARGET_BOOT = 1.0;
const DEFAULT_RTTS_MS = [0, 50];
/** A copy of 128 MiB through nbdkit curl at 100 ms takes minutes; past ten something hangs. */
const COPY_TIMEOUT_MS = 10 * 60 * 1000;

export async function run(ctx) {
  const { results, scratch, signal, table } = ctx;
  await requireTools(TOOLS);
  const cli = {
    vm: join(ctx.repoRoot, 'packages/vm-launch/dist/cli.js'),
    pack: join(ctx.repoRoot, 'packages/packer/dist/cli.js'),
    httpstorged: join(ctx.repoRoot, 'packages/blockfs/dist/cli.js'),
    mirror: join(ctx.repoRoot, 'packages/mirror/dist/cli.js'),
  };
  await requireBuilt(Object.values(cli));
  const mib = Number(process.env.BENCH_NBD_MIB || 128);
  const rtts = (process.env.BENCH_NBD_RTTS || DEFAULT_RTTS_MS.join(',')).split(',').map(Number);
  results.imageMiB = mib;
  results.rtts = rtts;

  const raw = join(scratch, 'raw');
  await mkdir(raw);
  const image = join(raw, 'disk.img');
  await writeImage(image, mib);
  const store = join(scratch, 'store');
  await runCommand(process.execPath, [cli.pack, 'pack', image, '--store', store, '--name', 'disk'], { signal });
  const mirror = startProcess(
    process.execPath,
    [cli.mirror, 'serve', store, '--listen', '127.0.0.1:0', '--no-access-log'],
    {
      stdin: 'ignore',
    },
  );
  const rawServer = await serveStatic(raw);
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
  const withProxy = async (upstream, rtt, fn) => {
    const args = [cli.mirror, 'proxy', upstream, '--listen', '127.0.0.1:0'];
    if (rtt) args.push('--inject', `latency=${rtt}ms`);
    const proxy = startProcess(process.execPath, args, { stdin: 'ignore' });
    try {
      const url = (await proxy.waitFor(/proxy (http:\/\/\S+) -> /, 30_000))[1];
      return await fn(url);
    } finally {
      await proxy.stop({ graceMs: 5000 });
    }
  };
  const copy = (uri) => runCommand('nbdcopy', [uri, 'null:'], { signal, timeoutMs: COPY_TIMEOUT_MS });

  try {
    const mirrorUrl = (await mirror.waitFor(/serving \S+ on (http:\/\/\S+)/, 30_000))[1];

    // warm: one cache, filled by an untimed copy.
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

    // cold: thfc against nbdkit curl, each behind its own proxy at each RTT.
    results.cold = [];
    for (const rtt of rtts) {
      const thfc = [];
      const peer = [];
      for (let i = 0; i < ctx.runs; i++) {
        thfc.push(
          await withProxy(mirrorUrl, rtt, async (url) => {
            const t0 = nowSeconds();
            const d = await serveNbd(url, fresh('cache'));
            await copy(d.uri);
            const s = nowSeconds() - t0;
            await d.stop();
            return s;
          }),
        );
        peer.push(
          await withProxy(rawServer.url, rtt, async (url) => {
            const t0 = nowSeconds();
            await runCommand('nbdkit', ['-U', '-', 'curl', `${url}disk.img`, '--run', 'nbdcopy "$uri" null:'], {
              signal,
              timeoutMs: COPY_TIMEOUT_MS,
            });
            return nowSeconds() - t0;
          }),
        );
      }
      results.cold.push({ rtt, thfcSeconds: thfc, nbdkitSeconds: peer });
      const label = `cold copy at RTT ${rtt} ms: nbdkit curl / thfc NBD`;
      if (rtt === TARGET_COLD_RTT_MS)
        table.compare(`cold-${rtt}`, label, median(peer), median(thfc), 's', '>=', TARGET_COLD);
      else table.info(`cold-${rtt}`, label, median(peer), 's', median(thfc));
    }

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
          '--accel',
          'tcg',
          '--snapshot',
          '--mem',
          String(GUEST_MEM_MIB),
          '--kernel',
          guest.kernel,
          '--initrd',
          guest.initrd,
          '--append',
          guest.append,
          '--report',
          report,
        ],
        { signal, timeoutMs: 180_000 },
      );
      const { readFile } = await import('node:fs/promises');
      const r = JSON.parse(await readFile(report, 'utf8'));
      if (r.outcome !== 'powered-off') throw new BenchError('BOOT', `boot via ${via}: ${r.outcome}`);
      return r.seconds.guest;
    };
    await boot('nbd'); // untimed: fills the cache
    const bootNbd = [];
    const bootFuse = [];
    for (let i = 0; i < ctx.runs; i++) {
      for (const via of i % 2 ? ['fuse', 'nbd'] : ['nbd', 'fuse'])
        (via === 'nbd' ? bootNbd : bootFuse).push(await boot(via));
    }
    results.boot = { nbdGuestSeconds: bootNbd, fuseGuestSeconds: bootFuse };
    table.compare(
      'boot',
      'boot to marker (guest phase) via NBD / via FUSE',
      median(bootNbd),
      median(bootFuse),
      's',
      '<=',
      TARGET_BOOT,
    );

    // kill: BENCH_NBD_KILLS boots via NBD over a 20 ms link, each with httpstorged killed (SIGKILL) once the guest
    // has made 10 disk reads and started again on the same socket and cache; then the whole image is read back
    // through the boot's cache over the same link and compared byte for byte.
    const kills = Number(process.env.BENCH_NBD_KILLS || 10);
    const gmirror = startProcess(
      process.execPath,
      [cli.mirror, 'serve', gstore, '--listen', '127.0.0.1:0', '--no-access-log'],
      { stdin: 'ignore' },
    );
    try {
      const gurl = (await gmirror.waitFor(/serving \S+ on (http:\/\/\S+)/, 30_000))[1];
      const outcome = await withProxy(gurl, 20, async (url) => {
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
              '--accel',
              'tcg',
              '--snapshot',
              '--mem',
              String(GUEST_MEM_MIB),
              '--kernel',
              guest.kernel,
              '--initrd',
              guest.initrd,
              '--append',
              guest.append,
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
          await waitUntil(async () => (await stats()).images[0].reads >= 10, { timeoutMs: 60_000, what: 'disk reads' });
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
  } finally {
    for (const pid of daemons) await stopPid(pid);
    await rawServer.close();
    await mirror.stop();
  }
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
