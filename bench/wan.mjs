// Suite `wan`: the first boot over a slow link. Seconds from start to the test guest's marker line when
// every byte of its disk crosses a simulated WAN, at RTT 0, 20, 50 and 100 ms, in four modes:
//
//   (a) thfc, no read-ahead, no prefetch   thfc-vm boot … --readahead 0 --no-prefetch
//   (b) thfc, read-ahead only              thfc-vm boot … --no-prefetch           (httpstorged's default read-ahead)
//   (c) thfc, boot-profile prefetch        thfc-vm boot …                          (the published guest.profile replays)
//   (d) the peer: the same raw image over HTTP through `nbdkit curl`, qemu as the NBD client
//       (`-drive file=nbd:unix:SOCK,format=raw,…`); qemu's own curl driver if nbdkit's curl plugin is missing
//
// The link: one `thfc-mirror proxy UPSTREAM --inject latency=RTTms` per boot, in front of `thfc-mirror serve
// STORE` for thfc and of a plain range-capable static server holding the raw image for the peer. The proxy
// delays each response by the RTT (one round trip per request, the cost of a request on a kept-alive
// connection) and counts the bytes it relays. Bandwidth is unlimited unless BENCH_WAN_BANDWIDTH sets a cap
// (the proxy's `bandwidth=` syntax, e.g. 12.5MB/s for 100 Mbit/s, on every timed link and the fault runs):
// the targets are defined by RTT alone, and the boot's ~330 dependent round trips are what the modes differ
// in. Transfer is not free, though: a cold boot of the guest moves 22-25 MB of stored blocks (the modes differ
// by a few MB: read-ahead fetches more than (a)) and the peer ~64 MB of raw image, ~2 s at 100 Mbit/s; set
// the cap to see it.
//
// The guest (test/support/guest-image.mjs with a boot payload, lib.mjs BOOT_PAYLOAD_MIB) boots a Debian
// kernel and busybox; before its marker, its init reads ~10 MB in ~140 files in an order unrelated to their
// place on the disk, as a distribution's boot starting services does, then one 48 MiB file whole, as a boot
// that loads a large application does: ~67 MB read by the guest, from ~330 of the image's 256 KiB blocks
// (issue 12's T5 asks for a boot that reads at least 60 MB). BENCH_GUEST_PAYLOAD_MIB=0 boots the tests'
// guest (~17 MB read, ~150 blocks).
//
// Every thfc boot has a fresh block cache; every boot uses a throw-away qemu snapshot (--snapshot /
// snapshot=on), the same raw virtio drive, TCG, 256 MiB. Time runs from the start of thfc-vm (so it
// includes its mount: node start-up, the index and profile fetches) or of nbdkit, to the marker line.
// The profile for (c) is recorded once by an untimed warm-up boot (--record-profile) and published with
// `thfc-pack profile add` (signed with the key that signed the index; all thfc boots --trust it).
//
// Fault runs: at 50 ms with error-rate=0.01,reset-rate=0.01, modes (b) and (c), BENCH_RUNS boots each.
// Each must complete (exit 0, qemu powered off, no read errors), print the exact marker line (the guest
// read /etc/thfc-release off its disk), and then the guest-visible disk is compared byte for byte against
// the original: the index is mounted again over the same faulty link with the boot's cache, and all of it
// is read and compared (wrong bytes must be zero).
//
// Targets at 50 ms (medians): (c) ≤ 0.5 × (a); (c) ≤ 0.5 × (d); bytes httpstorged fetched in (c) ≤ 1.3 ×
// the bytes the guest read. The matrix is printed first, then the target table and BENCH-JSON.
//
// Env: BENCH_RUNS (default 3), BENCH_WAN_RTTS (comma list of ms, default 0,20,50,100), BENCH_WAN_BANDWIDTH
// (a rate cap on the link, e.g. 12.5MB/s; default none), BENCH_GUEST_PAYLOAD_MIB (default 48; 0: no payload).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BenchError,
  cliPaths,
  formatNumber,
  formatValue,
  GUEST_MEM_MIB,
  GUEST_TOOLS,
  guestBootArgs,
  guestPayloadMiB,
  isMountPoint,
  median,
  mountPoints,
  nowSeconds,
  onExit,
  removePath,
  requireBuilt,
  requireTools,
  runCommand,
  serveStatic,
  startProcess,
  testGuest,
  unmountFuse,
  waitForQuiet,
  waitUntil,
  withWanProxy,
} from './lib.mjs';

export const description =
  'first boot over a simulated WAN (RTT 0-100 ms): no read-ahead, read-ahead, boot-profile prefetch, nbdkit curl; fault runs';

const TOOLS = [
  ['qemu-system-x86_64', 'qemu-system-x86'],
  ['fusermount', 'fuse3'],
  ['nbdkit', 'nbdkit'],
  ...GUEST_TOOLS,
];
export const DEFAULT_RTTS_MS = [0, 20, 50, 100];
/** The RTT the targets are judged at: a cross-continent link. */
export const TARGET_RTT_MS = 50;
export const TARGET_C_VS_A = 0.5;
export const TARGET_C_VS_D = 0.5;
export const TARGET_BYTES = 1.3;
export const FAULT_SPEC = 'error-rate=0.01,reset-rate=0.01';
export const MODES = ['a', 'b', 'c', 'd'];
export const MODE_LABELS = {
  a: '(a) no read-ahead, no prefetch',
  b: '(b) read-ahead only',
  c: '(c) profile prefetch',
  d: '(d) nbdkit curl (peer)',
};
/** httpstorged flags per thfc mode; (c) adds nothing: the profile published beside the index replays by itself. */
const MODE_FLAGS = { a: ['--readahead', '0', '--no-prefetch'], b: ['--no-prefetch'], c: [] };
/** A TCG boot of the test guest takes 4-8 s; the peer's ~350 round trips at 100 ms add ~35; two minutes means it hangs. */
const BOOT_TIMEOUT_MS = 120_000;
/** Per boot; short, because 60+ boots each waiting the harness default would blow the ~15 min budget. */
const QUIET_WAIT_MS = 10_000;
/** Past this much waiting for quiet cores in total, measure at once (the figures record how busy it was). */
const QUIET_BUDGET_MS = 120_000;

export async function run(ctx) {
  const { results, scratch, signal } = ctx;
  await requireTools(TOOLS);
  const cli = cliPaths(ctx.repoRoot);
  await requireBuilt(Object.values(cli));
  const { qemuArgs } = await import(pathToFileURL(join(ctx.repoRoot, 'packages/vm-launch/dist/qemu-args.js')).href);
  const rtts = rttsFromEnv();
  const bandwidth = process.env.BENCH_WAN_BANDWIDTH?.trim() || '';
  const peer = await choosePeer();
  results.peer = peer;
  results.rtts = rtts;
  results.bandwidth = bandwidth || null;

  const guest = await testGuest(ctx, { payloadMiB: guestPayloadMiB() });

  // Safety net for an interrupted run: the harness kills our process groups, but httpstorged runs in its
  // own group under thfc-vm. Detach every mount under scratch and stop, by pid, what still names it.
  const dropExitHook = onExit(() => leftoversSync(scratch));

  const raw = join(scratch, 'raw');
  await mkdir(raw);
  await copyFile(guest.disk, join(raw, 'guest.img'));
  const store = join(scratch, 'store');
  const key = join(scratch, 'publisher.key');
  await runCommand(process.execPath, [cli.pack, 'pack', join(raw, 'guest.img'), '--store', store, '--name', 'guest'], {
    signal,
  });
  await runCommand(process.execPath, [cli.pack, 'keygen', key], { signal });
  await runCommand(process.execPath, [cli.pack, 'sign', join(store, 'guest.idx'), '--key', key], { signal });
  const state = join(scratch, 'state');

  const mirror = startProcess(
    process.execPath,
    [cli.mirror, 'serve', store, '--listen', '127.0.0.1:0', '--no-access-log'],
    {
      stdin: 'ignore',
    },
  );
  const rawServer = await serveStatic(raw);
  let quietSpentMs = 0;
  const quiet = async () => {
    const maxWaitMs = Math.max(0, Math.min(QUIET_WAIT_MS, QUIET_BUDGET_MS - quietSpentMs));
    const q = await waitForQuiet({ signal, log: ctx.log, maxWaitMs });
    quietSpentMs += q.waitedSeconds * 1000;
    return q;
  };
  const n = { boot: 0 };
  const common = ['--trust', `${key}.pub`, ...guestBootArgs(guest)];
  const env = { ctx, cli, state, common, guest, scratch, qemuArgs, peer, n, bandwidth };

  try {
    const mirrorUrl = (await mirror.waitFor(/serving \S+ on (http:\/\/\S+)/, 30_000))[1];
    const upstream = { thfc: mirrorUrl, raw: rawServer.url };
    results.upstreams = upstream;

    // Untimed warm-up (page-caches qemu, the kernel and initrd) that records the boot profile (c) replays.
    ctx.log('warm-up boot (untimed): recording the boot profile');
    const profile = join(scratch, 'guest.profile');
    const rec = await withProxy(env, upstream.thfc, '', (url) =>
      bootThfc(env, url, ['--no-prefetch', '--record-profile', profile]),
    );
    const add = await runCommand(
      process.execPath,
      [cli.pack, 'profile', 'add', join(store, 'guest.idx'), profile, '--key', key, '--json'],
      { signal },
    );
    const published = JSON.parse(add.stdout);
    results.profile = { blocks: published.blocks, uniqueBlocks: rec.value.mount?.uniqueBlocks };
    ctx.log(`published a boot profile of ${published.blocks} blocks (${rec.value.mount?.uniqueBlocks} in the image)`);

    // The matrix: every (RTT, mode) once per round, the modes' order rotated each round so drift hits all alike.
    const samples = [];
    results.samples = samples;
    results.failures = [];
    for (let round = 0; round < ctx.runs; round++) {
      for (const rtt of rtts) {
        const order = MODES.map((_m, i) => MODES[(i + round) % MODES.length]);
        ctx.log(`round ${round + 1}/${ctx.runs}, RTT ${rtt} ms: ${order.join(' ')}`);
        for (const mode of order) {
          signal.throwIfAborted();
          const q = await quiet();
          try {
            const s = await bootMode(env, upstream, mode, linkSpec(rtt, bandwidth));
            samples.push({ round: round + 1, rtt, mode, busy: q.busy, ...s });
          } catch (e) {
            if (signal.aborted) throw e;
            ctx.log(`round ${round + 1} RTT ${rtt} (${mode}) failed: ${e.message}`);
            results.failures.push({ round: round + 1, rtt, mode, error: e.message });
          }
        }
      }
    }

    // Fault runs: 1 % 503s and 1 % resets at 50 ms; the boot must complete and every byte must be right.
    const faults = [];
    results.faults = faults;
    for (let round = 0; round < ctx.runs; round++) {
      for (const mode of ['b', 'c']) {
        signal.throwIfAborted();
        ctx.log(`fault run ${round + 1}/${ctx.runs} (${mode}): ${linkSpec(TARGET_RTT_MS, bandwidth, FAULT_SPEC)}`);
        await quiet();
        faults.push({ round: round + 1, mode, ...(await faultRun(env, upstream, mode)) });
      }
    }
  } finally {
    await mirror.stop();
    await rawServer.close();
    leftoversSync(scratch);
    dropExitHook();
  }

  report(ctx, rtts);
}

// ---------------------------------------------------------------------------
// One boot per mode

/** Boots `mode` once through a fresh proxy injecting `inject`; resolves with seconds and bytes. */
async function bootMode(env, upstream, mode, inject) {
  if (mode === 'd') {
    const r = await withProxy(env, upstream.raw, inject, (url) => bootPeer(env, url));
    return { seconds: r.value.seconds, proxy: r.proxy };
  }
  const r = await withProxy(env, upstream.thfc, inject, (url) => bootThfc(env, url, MODE_FLAGS[mode]));
  const m = r.value.mount ?? {};
  return {
    seconds: r.value.seconds,
    /** thfc-vm's own measure of its mount: httpstorged's start-up, the index and (c) the profile fetch. */
    mountSeconds: r.value.vmSeconds?.mount,
    proxy: r.proxy,
    mount: {
      bytesDownloaded: m.bytesDownloaded,
      bytesRead: m.bytesRead,
      blocksFetched: m.blocksFetched,
      reads: m.reads,
      readaheadIssued: m.readaheadIssued,
      prefetch: m.prefetch ?? null,
    },
  };
}

/** withWanProxy through this suite's thfc-mirror. */
function withProxy(env, upstream, inject, fn) {
  return withWanProxy(env.cli.mirror, upstream, inject, fn);
}

/** `thfc-vm boot PROXY/guest.idx` with a fresh cache; seconds from its start to the marker, and its report. */
async function bootThfc(env, proxyUrl, flags, { keepCache = false } = {}) {
  const i = ++env.n.boot;
  const cache = join(env.scratch, `cache-${i}`);
  const reportFile = join(env.scratch, `report-${i}.json`);
  const args = [
    env.cli.vm,
    '--state-dir',
    env.state,
    'boot',
    `${proxyUrl}guest.idx`,
    '--cache',
    cache,
    '--report',
    reportFile,
    ...env.common,
    ...flags,
  ];
  const t0 = nowSeconds();
  const vm = startProcess(process.execPath, args, { stdin: 'ignore' });
  const seconds = await untilMarker(env, vm, t0, 'thfc-vm');
  const rep = JSON.parse(await readFile(reportFile, 'utf8'));
  if (!keepCache) await removePath(cache);
  await removePath(reportFile);
  // rep.seconds is thfc-vm's own split (mount, guest, total); `seconds` here is start to marker.
  return { ...rep, vmSeconds: rep.seconds, seconds, markerLine: markerLineOf(vm.output().stdout), cache };
}

/** The peer: nbdkit's curl plugin serving PROXY/guest.img on a Unix socket, qemu as its NBD client. */
async function bootPeer(env, proxyUrl) {
  const i = ++env.n.boot;
  const url = `${proxyUrl}guest.img`;
  const t0 = nowSeconds();
  let nbd;
  let drive = url; // qemu's own curl driver
  if (env.peer === 'nbdkit-curl') {
    const sock = join(env.scratch, `nbd-${i}.sock`);
    nbd = startProcess('nbdkit', ['-f', '-r', '-U', sock, '--exit-with-parent', 'curl', `url=${url}`], {
      stdin: 'ignore',
    });
    await waitUntil(() => existsSync(sock) || !nbd.running, { timeoutMs: 30_000, intervalMs: 5, what: 'nbdkit' });
    if (!nbd.running) throw new BenchError('PEER_FAILED', `nbdkit exited: ${nbd.output().stderr.trim()}`);
    drive = `nbd:unix:${sock}`;
  }
  try {
    const spec = {
      name: 'thfc-wan-peer',
      drive: { path: drive, format: 'raw', bus: 'virtio', snapshot: true },
      accel: 'tcg',
      memMiB: GUEST_MEM_MIB,
      cpus: 1,
      kernel: env.guest.kernel,
      initrd: env.guest.initrd,
      append: env.guest.append,
      display: { kind: 'serial' },
      net: 'none',
    };
    const qemu = startProcess('qemu-system-x86_64', env.qemuArgs(spec), { stdin: 'ignore' });
    const seconds = await untilMarker(env, qemu, t0, 'qemu (peer)');
    return { seconds, markerLine: markerLineOf(qemu.output().stdout) };
  } finally {
    await nbd?.stop({ graceMs: 5000 });
  }
}

/** Seconds from t0 to the marker on `proc`'s output; then waits for a clean exit (status 0). */
async function untilMarker(env, proc, t0, name) {
  const { signal } = env.ctx;
  const stop = () => void proc.stop({ signal: 'SIGINT', graceMs: 30_000 });
  signal.addEventListener('abort', stop, { once: true });
  const timer = setTimeout(stop, BOOT_TIMEOUT_MS);
  try {
    let seconds;
    try {
      await proc.waitFor(new RegExp(escapeRegExp(env.guest.markerLine)), BOOT_TIMEOUT_MS);
      seconds = nowSeconds() - t0;
    } catch (e) {
      await proc.stop({ signal: 'SIGINT', graceMs: 30_000 });
      throw new BenchError('BOOT_FAILED', `${name}: no marker: ${e.message}`);
    }
    const exit = await proc.exited;
    if (exit.code !== 0)
      throw new BenchError(
        'BOOT_FAILED',
        `${name} exited ${exit.signal ?? exit.code} after the marker\n${tail(proc.output().stderr)}`,
      );
    return seconds;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', stop);
  }
}

// ---------------------------------------------------------------------------
// Fault runs

/**
 * The comparison mount crosses the same faulty link. httpstorged fetches the index once, without retrying, so
 * an injected 503 or reset on it fails that mount (a finding the report counts); the comparison is then tried
 * again, up to this many times, so that the bytes still get compared.
 */
const COMPARE_ATTEMPTS = 3;

/** One boot through the faulty link, then the whole guest-visible disk compared over the same faulty link. */
async function faultRun(env, upstream, mode) {
  const inject = linkSpec(TARGET_RTT_MS, env.bandwidth, FAULT_SPEC);
  const out = { completed: false, markerOk: false, faults: { boot: {}, compare: {} }, compareFailures: [] };
  let r;
  try {
    r = await withProxy(env, upstream.thfc, inject, (url) => bootThfc(env, url, MODE_FLAGS[mode], { keepCache: true }));
  } catch (e) {
    if (env.ctx.signal.aborted) throw e;
    out.bootError = e.message;
    addFaults(out.faults.boot, e.proxy);
    env.ctx.log(`fault run (${mode}): the boot failed: ${e.message}`);
    return out;
  }
  const cache = r.value.cache;
  try {
    addFaults(out.faults.boot, r.proxy);
    out.seconds = r.value.seconds;
    out.markerOk = r.value.markerLine === env.guest.markerLine;
    out.qemu = r.value.qemu;
    out.readErrors = r.value.mount?.readErrors;
    out.completed =
      r.value.outcome === 'powered-off' && r.value.qemu?.code === 0 && r.value.exitCode === 0 && out.readErrors === 0;
    for (let attempt = 1; attempt <= COMPARE_ATTEMPTS && out.wrongBytes === undefined; attempt++) {
      try {
        const cmp = await withProxy(env, upstream.thfc, inject, (url) => compareMounted(env, url, cache));
        addFaults(out.faults.compare, cmp.proxy);
        Object.assign(out, cmp.value);
      } catch (e) {
        if (env.ctx.signal.aborted) throw e;
        addFaults(out.faults.compare, e.proxy);
        out.compareFailures.push(e.message.split('\n')[0]);
        env.ctx.log(`fault run (${mode}): comparison mount failed (attempt ${attempt}): ${e.message.split('\n')[0]}`);
      }
    }
  } finally {
    await removePath(cache);
  }
  return out;
}

/** Adds a proxy summary's counters into `into`. */
function addFaults(into, p) {
  for (const k of ['requests', 'errors', 'resets', 'bytes']) into[k] = (into[k] ?? 0) + (p?.[k] ?? 0);
}

/** Mounts PROXY/guest.idx with `cache` (the boot's) and compares every byte with the original image. */
async function compareMounted(env, proxyUrl, cache) {
  const mnt = join(env.scratch, `cmp-${++env.n.boot}`);
  await mkdir(mnt);
  const daemon = startProcess(
    process.execPath,
    [
      env.cli.httpstorged,
      '-f',
      mnt,
      `${proxyUrl}guest.idx`,
      '--cache',
      cache,
      '--trust',
      `${join(env.scratch, 'publisher.key')}.pub`,
      '--no-prefetch',
    ],
    { stdin: 'ignore' },
  );
  try {
    await waitUntil(() => isMountPoint(mnt) || !daemon.running, { timeoutMs: 60_000, what: 'httpstorged mount' });
    if (!daemon.running) throw new BenchError('MOUNT_FAILED', `httpstorged: ${tail(daemon.output().stderr)}`);
    return await compareFiles(join(mnt, 'guest'), env.guest.disk);
  } finally {
    await daemon.stop({ graceMs: 15_000 });
    await unmountFuse(mnt);
    await removePath(mnt);
  }
}

/** Reads both files in 1 MiB pieces: how many bytes differ, and how many were compared. */
async function compareFiles(a, b) {
  const [fa, fb] = [await open(a, 'r'), await open(b, 'r')];
  try {
    const size = (await fb.stat()).size;
    if ((await fa.stat()).size !== size) return { wrongBytes: size, comparedBytes: 0, sizeMismatch: true };
    const [ba, bb] = [Buffer.alloc(1 << 20), Buffer.alloc(1 << 20)];
    let wrong = 0;
    for (let off = 0; off < size; off += ba.length) {
      const len = Math.min(ba.length, size - off);
      await readFully(fa, ba, len, off);
      await readFully(fb, bb, len, off);
      if (ba.compare(bb, 0, len, 0, len) !== 0) for (let i = 0; i < len; i++) if (ba[i] !== bb[i]) wrong++;
    }
    return { wrongBytes: wrong, comparedBytes: size };
  } finally {
    await fa.close();
    await fb.close();
  }
}

async function readFully(fh, buf, len, pos) {
  for (let got = 0; got < len; ) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) throw new BenchError('SHORT_READ', `short read at ${pos + got}`);
    got += bytesRead;
  }
}

// ---------------------------------------------------------------------------
// Report: the matrix, then the target table

function report(ctx, rtts) {
  const { table, results } = ctx;
  const cell = (rtt, mode, pick) =>
    median(
      results.samples
        .filter((s) => s.rtt === rtt && s.mode === mode)
        .map(pick)
        .filter(Number.isFinite),
    );
  const secs = Object.fromEntries(
    rtts.map((rtt) => [rtt, Object.fromEntries(MODES.map((m) => [m, cell(rtt, m, (s) => s.seconds)]))]),
  );
  results.medians = secs;
  // Slope of time over RTT (least squares over every sample): how many round trips the boot waits for, one
  // after another. Its standard error says how far the machine's noise lets that number be trusted.
  const serial = {};
  for (const mode of MODES)
    serial[mode] = fitLine(results.samples.filter((s) => s.mode === mode).map((s) => [s.rtt / 1000, s.seconds]));
  results.serialRoundTrips = serial;

  const bytesOf = (rtt, mode) => ({
    link: cell(rtt, mode, (s) => s.proxy?.bytes),
    requests: cell(rtt, mode, (s) => s.proxy?.requests),
    downloaded: cell(rtt, mode, (s) => s.mount?.bytesDownloaded),
    read: cell(rtt, mode, (s) => s.mount?.bytesRead),
  });
  const bytes = Object.fromEntries(
    rtts.map((rtt) => [rtt, Object.fromEntries(MODES.map((m) => [m, bytesOf(rtt, m)]))]),
  );
  results.bytes = bytes;

  const w = (s, n) => String(s).padEnd(n);
  const cols = MODES.map((m) => MODE_LABELS[m]);
  const widths = [16, ...cols.map((c) => Math.max(c.length, 18))];
  const row = (cells) => `| ${cells.map((c, i) => w(c, widths[i])).join(' | ')} |\n`;
  const rule = `|${widths.map((x) => '-'.repeat(x + 2)).join('|')}|\n`;
  const cap = results.bandwidth ? `; bandwidth ${results.bandwidth}` : '';
  let out = `\n## bench wan: seconds to the guest marker, cold cache (median of ${ctx.runs}; peer: ${results.peer}${cap})\n\n`;
  out += row(['RTT', ...cols]) + rule;
  for (const rtt of rtts) out += row([`${rtt} ms`, ...MODES.map((m) => formatValue(secs[rtt][m], 's'))]);
  out += row([
    'serial RTTs',
    ...MODES.map((m) =>
      !Number.isFinite(serial[m].slope)
        ? '-'
        : `${serial[m].slope.toFixed(1)}${Number.isFinite(serial[m].se) ? ` ± ${serial[m].se.toFixed(1)}` : ''}`,
    ),
  ]);
  out += row([
    'of which mount',
    ...MODES.map((m) =>
      m === 'd'
        ? '-'
        : rtts
            .map((rtt) =>
              formatNumber(
                cell(rtt, m, (x) => x.mountSeconds),
                2,
              ),
            )
            .join(' / '),
    ),
  ]);
  out += `(of which mount: thfc-vm's mount seconds at ${rtts.join(' / ')} ms: httpstorged start-up, index and profile fetch)\n`;
  out += `\nbytes over the link (proxy: body bytes / requests), and httpstorged's fetched / read-by-guest\n\n`;
  out += row(['RTT', ...cols]) + rule;
  for (const rtt of rtts) {
    out += row([
      `${rtt} ms link`,
      ...MODES.map((m) => `${formatValue(bytes[rtt][m].link, 'MB')} / ${formatValue(bytes[rtt][m].requests, '')} req`),
    ]);
    out += row([
      `${rtt} ms fetch/read`,
      ...MODES.map((m) =>
        m === 'd' ? '-' : `${formatValue(bytes[rtt][m].downloaded, 'MB')} / ${formatValue(bytes[rtt][m].read, 'MB')}`,
      ),
    ]);
  }
  const faults = results.faults ?? [];
  if (faults.length) {
    out += `\nfault runs: ${linkSpec(TARGET_RTT_MS, results.bandwidth, FAULT_SPEC)}\n\n`;
    const head = [
      'run',
      'mode',
      'seconds',
      'boot: completed, marker',
      'wrong bytes / compared',
      'compare mounts failed',
      '503s / resets / requests (boot; compare)',
    ];
    const lines = faults.map((f) => {
      const e = (k) => `${f.faults.boot?.[k] ?? 0}`;
      const c = (k) => `${f.faults.compare?.[k] ?? 0}`;
      return [
        String(f.round),
        MODE_LABELS[f.mode],
        formatValue(f.seconds, 's'),
        f.bootError
          ? `NO: ${f.bootError.split('\n')[0].slice(0, 50)}`
          : `${f.completed ? 'yes' : 'NO'}, ${f.markerOk ? 'exact' : 'WRONG'}`,
        f.wrongBytes === undefined ? 'not compared' : `${f.wrongBytes} / ${formatValue(f.comparedBytes, 'MB')}`,
        String(f.compareFailures.length),
        `${e('errors')}/${e('resets')}/${e('requests')}; ${c('errors')}/${c('resets')}/${c('requests')}`,
      ];
    });
    const fw = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
    const frow = (cells) => `| ${cells.map((c, i) => w(c, fw[i])).join(' | ')} |\n`;
    out += frow(head) + `|${fw.map((x) => '-'.repeat(x + 2)).join('|')}|\n`;
    for (const l of lines) out += frow(l);
    for (const f of faults)
      for (const why of f.compareFailures) out += `  run ${f.round} (${f.mode}) comparison mount failed: ${why}\n`;
  }
  process.stdout.write(`${out}\n`);

  // Target rows.
  const at = secs[TARGET_RTT_MS];
  if (!at) {
    table.error('targets', `targets at ${TARGET_RTT_MS} ms`, `RTT ${TARGET_RTT_MS} ms was not measured`);
  } else {
    for (const mode of MODES)
      table.info(`t.${mode}`, `${MODE_LABELS[mode]} at ${TARGET_RTT_MS} ms: seconds to marker`, at[mode], 's');
    table.compare(
      'c-vs-a',
      `(c) profile prefetch vs (a) no read-ahead, at ${TARGET_RTT_MS} ms`,
      at.c,
      at.a,
      's',
      '<=',
      TARGET_C_VS_A,
    );
    table.compare(
      'c-vs-d',
      `(c) profile prefetch vs (d) ${results.peer}, at ${TARGET_RTT_MS} ms`,
      at.c,
      at.d,
      's',
      '<=',
      TARGET_C_VS_D,
    );
    const b = bytes[TARGET_RTT_MS].c;
    table.compare(
      'bytes-c',
      `(c) bytes httpstorged fetched vs bytes the guest read, at ${TARGET_RTT_MS} ms`,
      b.downloaded,
      b.read,
      'MB',
      '<=',
      TARGET_BYTES,
    );
    table.info('bytes-c.link', '(c) body bytes over the link (proxy) vs read', b.link, 'MB', b.read);
    // Paired per round: drift between rounds cancels.
    const paired = (x, y) => {
      const ratios = [];
      for (let r = 1; r <= ctx.runs; r++) {
        const s = (m) => results.samples.find((v) => v.round === r && v.rtt === TARGET_RTT_MS && v.mode === m)?.seconds;
        if (s(x) && s(y)) ratios.push(s(x) / s(y));
      }
      return median(ratios);
    };
    table.info('paired.c-vs-a', 'paired per round: (c) / (a) (median)', paired('c', 'a'), 'x');
    table.info('paired.c-vs-d', 'paired per round: (c) / (d) (median)', paired('c', 'd'), 'x');
    table.info('paired.b-vs-a', 'paired per round: (b) / (a) (median)', paired('b', 'a'), 'x');
    const floor = secs[0]?.c;
    if (floor) table.info('floor', '(c) at 0 ms: the boot without any link delay', floor, 's');
  }
  for (const mode of MODES)
    table.info(
      `serial.${mode}`,
      `${MODE_LABELS[mode]}: round trips waited for (slope of s over RTT, ± ${Number.isFinite(serial[mode].se) ? serial[mode].se.toFixed(1) : '-'})`,
      serial[mode].slope,
    );
  if (results.profile)
    table.info('profile.blocks', 'boot profile: blocks (of the image’s unique)', results.profile.blocks);
  for (const f of results.failures ?? [])
    table.error(
      `failed.${f.mode}@${f.rtt}.${f.round}`,
      `${MODE_LABELS[f.mode]} at ${f.rtt} ms, round ${f.round}`,
      f.error,
    );

  for (const mode of ['b', 'c']) {
    const runs = faults.filter((f) => f.mode === mode);
    if (!runs.length) continue;
    const done = runs.filter((f) => f.completed && f.markerOk).length;
    table.compare(
      `faults.${mode}.completed`,
      `fault runs ${MODE_LABELS[mode]}: boots completed with the exact marker`,
      done,
      runs.length,
      '',
      '==',
      1,
    );
    const compared = runs.reduce((a, f) => a + (f.comparedBytes ?? 0), 0);
    const wrong = runs.reduce((a, f) => a + (f.wrongBytes ?? 0), 0);
    const unchecked = runs.filter((f) => f.wrongBytes === undefined).length;
    if (unchecked)
      table.error(
        `faults.${mode}.wrong`,
        `fault runs ${MODE_LABELS[mode]}: wrong bytes`,
        `${unchecked} run(s) not compared`,
      );
    else
      table.compare(
        `faults.${mode}.wrong`,
        `fault runs ${MODE_LABELS[mode]}: wrong bytes in the guest-visible disk`,
        wrong,
        compared,
        'B',
        '==',
        0,
      );
    const sum = (k) => runs.reduce((a, f) => a + (f.faults.boot?.[k] ?? 0) + (f.faults.compare?.[k] ?? 0), 0);
    table.info(
      `faults.${mode}.injected`,
      `fault runs ${MODE_LABELS[mode]}: 503s + resets injected (boots and comparisons)`,
      sum('errors') + sum('resets'),
    );
    table.info(
      `faults.${mode}.compare-mounts-failed`,
      `fault runs ${MODE_LABELS[mode]}: comparison mounts failed by a fault on the index (not retried)`,
      runs.reduce((a, f) => a + f.compareFailures.length, 0),
    );
  }
}

/** Least-squares line through (x, y): its slope and the slope's standard error (NaN when undetermined). */
export function fitLine(points) {
  const p = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const none = { slope: Number.NaN, se: Number.NaN };
  // One RTT only (BENCH_WAN_RTTS=50): no line. Checked on the x values themselves: their mean is not exact in
  // floating point, so the spread around it would be a tiny non-zero and the slope noise of order 1e17.
  if (new Set(p.map(([x]) => x)).size < 2) return none;
  const mx = p.reduce((a, [x]) => a + x, 0) / p.length;
  const my = p.reduce((a, [, y]) => a + y, 0) / p.length;
  const sxx = p.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  if (!sxx) return none;
  const slope = p.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
  const residual = p.reduce((a, [x, y]) => a + (y - my - slope * (x - mx)) ** 2, 0);
  return { slope, se: p.length > 2 ? Math.sqrt(residual / (p.length - 2) / sxx) : Number.NaN };
}

// ---------------------------------------------------------------------------
// Small helpers

/** The proxy's --inject spec for one link: the RTT (none at 0), the bandwidth cap if any, then `extra`. */
export function linkSpec(rttMs, bandwidth, extra) {
  return [rttMs ? `latency=${rttMs}ms` : '', bandwidth ? `bandwidth=${bandwidth}` : '', extra ?? '']
    .filter(Boolean)
    .join(',');
}

function rttsFromEnv() {
  const raw = process.env.BENCH_WAN_RTTS;
  if (!raw) return DEFAULT_RTTS_MS;
  const rtts = raw.split(',').map((s) => Number(s.trim()));
  if (rtts.some((r) => !Number.isInteger(r) || r < 0))
    throw new BenchError('BAD_ENV', `BENCH_WAN_RTTS=${raw}: expected whole milliseconds, e.g. 0,50`);
  return rtts;
}

/** nbdkit's curl plugin when it loads, else qemu's own curl block driver. */
async function choosePeer() {
  const r = spawnSync('nbdkit', ['curl', '--dump-plugin'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0 ? 'nbdkit-curl' : 'qemu-curl';
}

function markerLineOf(stdout) {
  return stdout
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .find((l) => l.startsWith('THFC-GUEST-MARKER'));
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function tail(text) {
  return text.trim().split('\n').slice(-8).join('\n');
}

/**
 * Last resort, synchronous (runs in the exit handler too): detach every mount under `dir`, then stop,
 * by pid, any process whose command line names `dir` (an httpstorged or qemu a killed thfc-vm left).
 */
function leftoversSync(dir) {
  for (const m of mountPoints()) {
    if (m.startsWith(dir)) spawnSync('fusermount', ['-u', '-z', m], { stdio: 'ignore', timeout: 10_000 });
  }
  const r = spawnSync('pgrep', ['-f', dir], { encoding: 'utf8', timeout: 10_000 });
  for (const pid of (r.stdout ?? '').split('\n').map(Number)) {
    if (pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
    }
  }
}
