// Shared helpers for the benchmark suites: timing, medians, child processes with
// captured output, the work directory, tree sizes and the result table.
//
// Units: MB is 10^6 bytes and MB/s is 10^6 bytes per second (as in
// shared/background/limits.md); MiB/KiB are binary.

import { spawn } from 'node:child_process';
import { createReadStream, constants as fsc, readFileSync } from 'node:fs';
import { access, lstat, mkdir, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, normalize, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { guestKernelArgs } from '../test/support/guest-image.mjs';

export const BENCH_SRC_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(BENCH_SRC_DIR, '..');

export const MB = 1e6;
export const KiB = 1024;
export const MiB = 1024 * 1024;

/** A failure the user can act on (missing tool, missing build, bad input): printed without a stack trace. */
export class BenchError extends Error {
  /** @param {string} code stable machine-readable code, e.g. MISSING_TOOL */
  constructor(code, message, options) {
    super(message, options);
    this.name = 'BenchError';
    this.code = code;
  }
}

/** A child process exited non-zero, was killed, or ran past its deadline. */
export class CommandError extends BenchError {
  constructor(message, { cmd, args, code, signal, stderr, timedOut, aborted }) {
    super(timedOut ? 'COMMAND_TIMEOUT' : aborted ? 'ABORTED' : 'COMMAND_FAILED', message);
    this.name = 'CommandError';
    Object.assign(this, { cmd, args, exitCode: code, signal, stderr, timedOut, aborted });
  }
}

// ---------------------------------------------------------------------------
// Work directory

/** Root of all benchmark files: $BENCH_DIR, else <repo>/.bench (gitignored). */
export function benchRoot() {
  return resolve(process.env.BENCH_DIR || join(REPO_ROOT, '.bench'));
}

export async function ensureDir(path) {
  await mkdir(path, { recursive: true });
  return path;
}

export async function removePath(path) {
  await rm(path, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Timing and statistics

export function nowSeconds() {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** Runs `fn` once and returns its result with the wall time in seconds. */
export async function timed(fn) {
  const t0 = nowSeconds();
  const result = await fn();
  return { result, seconds: nowSeconds() - t0 };
}

export function median(values) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median of `runs` calls of `fn`, which returns a number (e.g. MB/s). Returns the median and every sample. */
export async function medianOf(runs, fn) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await fn(i));
  return { median: median(samples), samples };
}

function readCpuTimes() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + (fields[4] ?? 0); // idle + iowait
  return { idle, total: fields.reduce((a, b) => a + b, 0) };
}

/** Fraction (0-1) of all cores' time spent busy over the next `ms` milliseconds, from /proc/stat. */
export async function cpuBusy(ms = 1000) {
  const a = readCpuTimes();
  await sleep(ms);
  const b = readCpuTimes();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

/** USER_HZ: /proc/PID/stat counts CPU time in these ticks (100 on every Linux this runs on). */
export const CLOCK_TICKS = 100;

/** utime + stime of `pid`, in CLOCK_TICKS. */
export function cpuTicks(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A mostly idle 2-core VM shows ~2-5 % busy; 20 % is about half a core of someone else's work. */
export const QUIET_BUSY_FRACTION = 0.2;
/** Long enough to outlast a test run or a one-minute load burst, short enough to keep a suite bounded. */
export const QUIET_MAX_WAIT_MS = 60_000;

/**
 * Call before a timed measurement: waits (up to maxWaitMs) until other processes leave the cores
 * mostly idle, since anything else running skews every figure on a 2-core machine. Never throws
 * on a busy machine; returns what it saw so the suite can record it.
 * @returns {Promise<{busy: number, waitedSeconds: number, quiet: boolean}>}
 */
export async function waitForQuiet({ signal, log: say = log, maxWaitMs = QUIET_MAX_WAIT_MS } = {}) {
  const t0 = nowSeconds();
  let busy = await cpuBusy(1000);
  let warned = false;
  while (busy > QUIET_BUSY_FRACTION && (nowSeconds() - t0) * 1000 < maxWaitMs && !signal?.aborted) {
    if (!warned) say(`cores ${(busy * 100).toFixed(0)} % busy with other work; waiting up to ${maxWaitMs / 1000} s`);
    warned = true;
    busy = await cpuBusy(2000);
  }
  const quiet = busy <= QUIET_BUSY_FRACTION;
  if (!quiet && !signal?.aborted) say(`still ${(busy * 100).toFixed(0)} % busy: measuring anyway (figures suspect)`);
  return { busy: Number(busy.toFixed(3)), waitedSeconds: Number((nowSeconds() - t0).toFixed(1)), quiet };
}

/** Positive integer from the environment, else `fallback`. */
export function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new BenchError('BAD_ENV', `${name}=${raw}: expected a positive integer`);
  return n;
}

// ---------------------------------------------------------------------------
// Child processes

/** Process groups of children still running, so an interrupted bench never leaves any behind. */
const liveGroups = new Set();

/** A command that hangs must not hang the bench: 5 minutes is ~10× the slowest expected step. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5 * 60 * 1000;
/** Enough for any --json report or error message; larger output is truncated, not buffered without bound. */
const MAX_CAPTURE_BYTES = 16 * MiB;

function killGroup(pid, signal = 'SIGKILL') {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // group already gone
  }
}

/** Kills every child process group this process started and that is still alive. Synchronous: safe in 'exit'. */
export function killAllChildren() {
  for (const pid of liveGroups) killGroup(pid);
  liveGroups.clear();
}

/** Synchronous last-resort cleanups (lazy unmounts, daemons outside our process groups), run at exit. */
const exitHooks = new Set();

/**
 * Registers `fn` (synchronous: it runs in the 'exit' handler) to run if the bench exits while the
 * resource it guards is still held, e.g. `spawnSync('fusermount', ['-u', '-z', mnt])`. Hooks run
 * before the child process groups are killed. Returns a function that unregisters the hook.
 */
export function onExit(fn) {
  exitHooks.add(fn);
  return () => exitHooks.delete(fn);
}

process.on('exit', () => {
  for (const fn of exitHooks) {
    try {
      fn();
    } catch {}
  }
  exitHooks.clear();
  killAllChildren();
});

/**
 * Runs `cmd args` in its own process group and resolves when every holder of
 * its stdout/stderr has closed them ('close', not 'exit'). That makes the wall
 * time include grandchildren such as bash `>(…)` process substitutions, which
 * bash itself does not wait for. Rejects with CommandError on a non-zero
 * exit, a signal, a timeout or an abort; any group member left over after the
 * leader exits is killed.
 *
 * @returns {Promise<{stdout: string, stderr: string, seconds: number, code: number}>}
 */
export function runCommand(cmd, args, { cwd, env, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS, signal } = {}) {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) {
      reject(new BenchError('ABORTED', `not started (aborted): ${cmd}`));
      return;
    }
    const t0 = nowSeconds();
    const child = spawn(cmd, args, {
      cwd,
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: a timeout or abort kills the whole pipeline
    });
    const out = [];
    const err = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let aborted = false;
    child.stdout.on('data', (c) => {
      if (outBytes < MAX_CAPTURE_BYTES) out.push(c);
      outBytes += c.length;
    });
    child.stderr.on('data', (c) => {
      if (errBytes < MAX_CAPTURE_BYTES) err.push(c);
      errBytes += c.length;
    });
    if (child.pid !== undefined) liveGroups.add(child.pid);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup(child.pid);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    let finished = false;
    const finish = (code, sig, spawnError) => {
      if (finished) return; // 'error' and 'close' can both fire for a failed spawn
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const seconds = nowSeconds() - t0;
      if (child.pid !== undefined) {
        killGroup(child.pid); // stragglers that closed their stdio but kept running
        liveGroups.delete(child.pid);
      }
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const shown = [cmd, ...args].join(' ');
      if (spawnError) {
        const hint = spawnError.code === 'ENOENT' ? ` (${cmd} not found in PATH)` : '';
        reject(new CommandError(`cannot run ${shown}: ${spawnError.message}${hint}`, { cmd, args, stderr }));
      } else if (timedOut || aborted || code !== 0) {
        const why = timedOut
          ? `timed out after ${Math.round(timeoutMs / 1000)} s`
          : aborted
            ? 'aborted'
            : sig
              ? `killed by ${sig}`
              : `exited with code ${code}`;
        const tail = stderr.trim().split('\n').slice(-15).join('\n');
        reject(
          new CommandError(`${shown}\n  ${why}${tail ? `\n  stderr:\n${indent(tail, 4)}` : ''}`, {
            cmd,
            args,
            code,
            signal: sig,
            stderr,
            timedOut,
            aborted,
          }),
        );
      } else {
        resolvePromise({ stdout, stderr, seconds, code });
      }
    };
    let spawnError;
    child.on('error', (e) => {
      spawnError = e;
      if (child.pid === undefined) finish(null, null, e);
    });
    child.on('close', (code, sig) => finish(code, sig, spawnError));
  });
}

function indent(text, n) {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

// ---------------------------------------------------------------------------
// Prerequisites

export async function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, cmd), fsc.X_OK);
      return join(dir, cmd);
    } catch {}
  }
  return undefined;
}

/**
 * Throws one BenchError naming every missing command and the Debian package
 * that provides it. @param {Array<[cmd: string, debianPackage: string]>} tools
 */
export async function requireTools(tools) {
  const missing = [];
  for (const [cmd, pkg] of tools) if (!(await which(cmd))) missing.push(`${cmd} not installed: apt-get install ${pkg}`);
  if (missing.length) throw new BenchError('MISSING_TOOL', missing.join('\n'));
}

/** Each thfc CLI's built entry point, relative to a checkout's root. */
export const THFC_CLIS = {
  vm: 'packages/vm-launch/dist/cli.js',
  pack: 'packages/packer/dist/cli.js',
  httpstorged: 'packages/blockfs/dist/cli.js',
  mirror: 'packages/mirror/dist/cli.js',
};

/** THFC_CLIS as absolute paths under the checkout `root`. */
export function cliPaths(root) {
  return Object.fromEntries(Object.entries(THFC_CLIS).map(([name, rel]) => [name, join(root, rel)]));
}

/** Throws MISSING_BUILD for the first of `files` (built CLIs) that does not exist. */
export async function requireBuilt(files) {
  for (const f of files)
    if (!(await stat(f).catch(() => undefined)))
      throw new BenchError('MISSING_BUILD', `${f} missing: run npm run build`);
}

/** What building the test guest (test/support/guest-image.mjs) needs, for requireTools. */
export const GUEST_TOOLS = [
  ['mkfs.ext4', 'e2fsprogs'],
  ['xz', 'xz-utils'],
  ['apt-get', 'apt'],
  ['dpkg', 'dpkg'],
];
/** The test guest needs ~100 MiB; 256 keeps qemu's start-up cost small and equal for every boot. */
export const GUEST_MEM_MIB = 256;

/**
 * thfc-vm's flags for the test guest: direct kernel boot under TCG, writes thrown away (`snapshot: false`: written
 * to thfc-vm's qcow2 overlay for the run, as a plain `thfc-vm boot` does).
 */
export function guestBootArgs(guest, { snapshot = true } = {}) {
  return [
    '--accel',
    'tcg',
    ...(snapshot ? ['--snapshot'] : []),
    '--mem',
    String(GUEST_MEM_MIB),
    ...guestKernelArgs(guest),
  ];
}

/**
 * The boot payload of the `boot` and `wan` suites' guest, MiB: read whole before the marker, it makes the boot
 * read ~65 MB (issue 12's T5 is judged on a guest whose boot reads at least 60 MB). BENCH_GUEST_PAYLOAD_MIB
 * overrides it (0: the tests' guest, ~17 MB read).
 */
export const BOOT_PAYLOAD_MIB = 48;

/** BENCH_GUEST_PAYLOAD_MIB, else `fallback`. */
export function guestPayloadMiB(fallback = BOOT_PAYLOAD_MIB) {
  const raw = process.env.BENCH_GUEST_PAYLOAD_MIB?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new BenchError('USAGE', `BENCH_GUEST_PAYLOAD_MIB: not a whole number: ${raw}`);
  return n;
}

/**
 * The tests' bootable guest (built once, then cached: test/support/guest-image.mjs), recorded in
 * ctx.results.guest; resolves to what buildGuestImage gives (disk, kernel, initrd, append, markerLine…).
 * `payloadMiB` adds the boot payload (a separate cached guest).
 */
export async function testGuest(ctx, { payloadMiB = 0 } = {}) {
  const { buildGuestImage } = await import(pathToFileURL(join(ctx.repoRoot, 'test/support/guest-image.mjs')).href);
  const guest = await buildGuestImage({ log: ctx.log, payloadMiB });
  ctx.results.guest = {
    versions: guest.versions,
    diskBytes: guest.diskBytes,
    marker: guest.markerLine,
    bootFiles: guest.bootFiles,
    payload: guest.payload,
  };
  return guest;
}

/** require() a package installed at the repo root (node_modules), with an actionable error. */
export function requireFromRoot(name) {
  const require = createRequire(join(REPO_ROOT, 'package.json'));
  try {
    return require(name);
  } catch (e) {
    throw new BenchError(
      'MISSING_MODULE',
      `cannot load ${name} from ${REPO_ROOT}/node_modules: run \`npm ci\` (${e.message})`,
    );
  }
}

// ---------------------------------------------------------------------------
// Trees on disk

/** Regular files under `dir` as a Map of relative path → apparent size (bytes). Missing dir = empty map. */
export async function listFiles(dir) {
  const files = new Map();
  async function walk(abs, rel) {
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (e) {
      if (e.code === 'ENOENT') return;
      throw e;
    }
    for (const ent of entries) {
      const a = join(abs, ent.name);
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) await walk(a, r);
      else if (ent.isFile()) files.set(r, (await lstat(a)).size);
    }
  }
  await walk(dir, '');
  return files;
}

/**
 * Sum of the apparent sizes of the regular files under `dir`. Unlike `du -sb`
 * it leaves out directory inodes, which are not payload: casync's store alone
 * has one 4 KiB directory per chunk prefix.
 */
export async function fileBytes(dir) {
  let sum = 0;
  for (const size of (await listFiles(dir)).values()) sum += size;
  return sum;
}

/** Files in `after` that are not in `before`: their count and total size. */
export function newFiles(before, after) {
  let count = 0;
  let bytes = 0;
  for (const [path, size] of after) {
    if (!before.has(path)) {
      count++;
      bytes += size;
    }
  }
  return { count, bytes };
}

// ---------------------------------------------------------------------------
// Formatting and the result table

export function formatNumber(x, digits = 1) {
  if (x === undefined || x === null || Number.isNaN(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Formats a value with its unit. Units: 'MB/s', 'MB' (value in bytes), 'B', 's', 'x' (a ratio), '%', '' (count). */
export function formatValue(value, unit) {
  if (value === undefined || value === null || Number.isNaN(value)) return '-';
  switch (unit) {
    case 'MB/s':
      return `${formatNumber(value, 1)} MB/s`;
    case 'MB':
      return `${formatNumber(value / MB, 2)} MB`;
    case 'B':
      return `${formatNumber(value, 0)} B`;
    case 's':
      return `${formatNumber(value, 2)} s`;
    case 'x':
      return `${formatNumber(value, 2)}×`;
    case '%':
      return `${formatNumber(value, 1)} %`;
    default:
      return formatNumber(value, Number.isInteger(value) ? 0 : 2);
  }
}

/** Error cells are clipped to keep the table readable; the full message is printed below the table and in the JSON. */
const MAX_ERROR_CELL = 60;

function clip(text, n) {
  const line = String(text).split('\n')[0];
  return line.length > n ? `${line.slice(0, n - 1)}…` : line;
}

const OPS = {
  '>=': (a, b) => a >= b,
  '<=': (a, b) => a <= b,
  '==': (a, b) => a === b,
};

/**
 * The table every suite prints: measurement | value | baseline | ratio | target | pass/fail.
 * `ratio` is value / baseline; a target is a bound on that ratio.
 */
export class ResultTable {
  constructor(title) {
    this.title = title;
    /** @type {Array<{key: string, measurement: string, value?: number, baseline?: number, unit?: string, ratio?: number, target?: string, pass?: boolean, note?: string, error?: string}>} */
    this.rows = [];
  }

  /** A number with no target (context for the reader). `baseline` is optional. */
  info(key, measurement, value, unit = '', baseline = undefined) {
    const ratio = baseline ? value / baseline : undefined;
    this.rows.push({ key, measurement, value, unit, baseline, ratio });
  }

  /** value / baseline compared against `target` with `op` ('>=', '<=', '=='). Returns whether it passed. */
  compare(key, measurement, value, baseline, unit, op, target) {
    const ratio = value / baseline;
    const ok = Number.isFinite(ratio) && OPS[op](Number(ratio.toFixed(6)), target);
    this.rows.push({ key, measurement, value, unit, baseline, ratio, target: `${op} ${target}`, pass: ok });
    return ok;
  }

  /** A measurement that could not be taken; counts as a failure. */
  error(key, measurement, message) {
    this.rows.push({ key, measurement, target: undefined, pass: false, error: message });
  }

  get failed() {
    return this.rows.filter((r) => r.pass === false);
  }

  print(write = (s) => process.stdout.write(s)) {
    const header = ['measurement', 'value', 'baseline', 'ratio', 'target', 'pass/fail'];
    const cells = this.rows.map((r) => [
      r.measurement,
      r.error ? `ERROR: ${clip(r.error, MAX_ERROR_CELL)}` : formatValue(r.value, r.unit),
      r.baseline === undefined ? '-' : formatValue(r.baseline, r.unit),
      r.ratio === undefined ? '-' : formatNumber(r.ratio, 3),
      r.target ?? '-',
      r.pass === undefined ? 'info' : r.pass ? 'PASS' : 'FAIL',
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c) => `| ${c.map((v, i) => v.padEnd(widths[i])).join(' | ')} |\n`;
    write(`\n## ${this.title}\n\n`);
    write(line(header));
    write(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
    for (const c of cells) write(line(c));
    write('\n');
  }

  toJSON() {
    return this.rows;
  }
}

/** The one machine-readable line a suite ends with; scripts grep for the prefix. */
export function printBenchJson(record, write = (s) => process.stdout.write(s)) {
  write(`BENCH-JSON ${JSON.stringify(record)}\n`);
}

export function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

// ---------------------------------------------------------------------------
// Long-running children (servers, FUSE daemons in the foreground)

/** Output kept per stream of a long-running child: enough for an error message, bounded for chatty servers. */
const MAX_TAIL_BYTES = 64 * KiB;

/**
 * Starts `cmd args` in its own process group and leaves it running; the group is killed if the
 * bench exits. Returns a handle: `waitFor(re)` resolves with the first stdout/stderr match,
 * `exited` resolves when it exits, `stop()` sends SIGTERM to the group, then SIGKILL after
 * `graceMs`. stdin is a pipe (`child.stdin`) unless `stdin: 'ignore'`.
 */
export function startProcess(cmd, args, { cwd, env, stdin = 'pipe' } = {}) {
  const child = spawn(cmd, args, {
    cwd,
    env: env ? { ...process.env, ...env } : process.env,
    stdio: [stdin, 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid !== undefined) liveGroups.add(child.pid);
  const tails = { stdout: '', stderr: '' };
  const watchers = new Set();
  const onData = (name) => (chunk) => {
    tails[name] = (tails[name] + chunk.toString('utf8')).slice(-MAX_TAIL_BYTES);
    for (const w of watchers) w();
  };
  child.stdout.on('data', onData('stdout'));
  child.stderr.on('data', onData('stderr'));
  child.stdin?.on('error', () => {}); // EPIPE when the child is gone
  let exitInfo;
  const exited = new Promise((res) => {
    child.on('error', (e) => {
      exitInfo ??= { code: null, signal: null, error: e };
      res(exitInfo);
    });
    child.on('exit', (code, signal) => {
      exitInfo ??= { code, signal };
      if (child.pid !== undefined) {
        killGroup(child.pid); // stragglers of the group
        liveGroups.delete(child.pid);
      }
      res(exitInfo);
      for (const w of watchers) w();
    });
  });
  const shown = [cmd, ...args].join(' ');
  const handle = {
    pid: child.pid,
    child,
    exited,
    get running() {
      return exitInfo === undefined;
    },
    /** Last ~64 KiB of each stream. */
    output: () => ({ ...tails }),
    /** Resolves with the match of `re` in stdout or stderr; rejects on exit or after `timeoutMs`. */
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((res, rej) => {
        const check = () => {
          const m = re.exec(tails.stdout) ?? re.exec(tails.stderr);
          if (m) return done(() => res(m));
          if (exitInfo) {
            const why = exitInfo.error ? exitInfo.error.message : `exited (${exitInfo.signal ?? exitInfo.code})`;
            return done(() => rej(new BenchError('PROCESS_EXITED', `${shown}: ${why}\n${tailOf(tails)}`)));
          }
        };
        const timer = setTimeout(
          () =>
            done(() =>
              rej(new BenchError('PROCESS_TIMEOUT', `${shown}: no ${re} within ${timeoutMs} ms\n${tailOf(tails)}`)),
            ),
          timeoutMs,
        );
        const done = (fn) => {
          clearTimeout(timer);
          watchers.delete(check);
          fn();
        };
        watchers.add(check);
        check();
      });
    },
    /** SIGTERM (or `signal`) to the group, SIGKILL after `graceMs`; resolves once the leader exited. */
    async stop({ signal = 'SIGTERM', graceMs = 3000 } = {}) {
      if (exitInfo || child.pid === undefined) return exitInfo;
      killGroup(child.pid, signal);
      const t = setTimeout(() => killGroup(child.pid), graceMs);
      const info = await exited;
      clearTimeout(t);
      return info;
    },
  };
  return handle;
}

function tailOf(tails) {
  const text = `${tails.stderr}\n${tails.stdout}`.trim().split('\n').slice(-10).join('\n');
  return text ? indent(text, 4) : '    (no output)';
}

/** Polls `fn` (async, truthy when done) every `intervalMs` until it is truthy; throws after `timeoutMs`. */
export async function waitUntil(fn, { timeoutMs = 30_000, intervalMs = 50, what = 'condition' } = {}) {
  const t0 = nowSeconds();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if ((nowSeconds() - t0) * 1000 > timeoutMs) throw new BenchError('WAIT_TIMEOUT', `timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** True once something accepts TCP connections on host:port. */
export async function portOpen(port, host = '127.0.0.1') {
  const { connect } = await import('node:net');
  return new Promise((res) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/**
 * nginx serving `root` on 127.0.0.1 (a port just handed out: nginx cannot listen on port 0), tuned as
 * limits.md recipe 5, its files under SCRATCH/nginx. `locations` is inserted into the server block as is
 * (e.g. a header for one path). With `accessLog` (a path), each request is logged as `URI STATUS BODY_BYTES`
 * (readAccessLog sums them). Returns its base URL, the process, and pid(): the worker's pid, which
 * does the serving (so its CPU is what a request costs; the master only supervises).
 */
export async function startNginx(ctx, root, { locations = '', accessLog } = {}) {
  const prefix = await ensureDir(join(ctx.scratch, 'nginx'));
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  await writeFile(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
daemon off;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')};
events { worker_connections 1024; }
http {
  ${accessLog ? `log_format bench '$uri $status $body_bytes_sent';\n  access_log ${accessLog} bench;` : 'access_log off;'}
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  open_file_cache max=4096;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp;
  proxy_temp_path ${prefix}/tmp;
  fastcgi_temp_path ${prefix}/tmp;
  uwsgi_temp_path ${prefix}/tmp;
  scgi_temp_path ${prefix}/tmp;
  server {
    listen 127.0.0.1:${port};
    root ${root};${locations ? `\n    ${locations}` : ''}
  }
}
`,
  );
  const proc = startProcess('nginx', ['-c', conf, '-p', `${prefix}/`, '-e', join(prefix, 'error.log')], {
    stdin: 'ignore',
  });
  await Promise.race([
    waitUntil(() => portOpen(port), { timeoutMs: 15_000, what: `nginx on port ${port}` }),
    proc.exited.then((x) => {
      const why = readTail(join(prefix, 'error.log'), 5) || '(no error log)';
      throw new BenchError('NGINX', `nginx exited (${x.code ?? x.signal}): ${why}`);
    }),
  ]);
  return { base: `http://127.0.0.1:${port}`, proc, pid: () => workerPid(proc.pid) ?? proc.pid };
}

/**
 * What nginx sent for URIs under `prefix` since byte `from` of its access log (startNginx's `accessLog`
 * format): requests, body bytes, and how many URIs were asked for more than once. Returns the log's
 * length too, to start the next count from.
 */
export function readAccessLog(file, { from = 0, prefix = '/' } = {}) {
  let text = '';
  try {
    text = readFileSync(file).subarray(from).toString('utf8');
  } catch {}
  const seen = new Set();
  const out = { requests: 0, bytes: 0, repeated: 0, notOk: 0, length: from + Buffer.byteLength(text) };
  for (const line of text.split('\n')) {
    const [uri, status, bytes] = line.split(' ');
    if (!uri?.startsWith(prefix)) continue;
    out.requests++;
    out.bytes += Number(bytes) || 0;
    if (status !== '200' && status !== '206') out.notOk++;
    if (seen.has(uri)) out.repeated++;
    seen.add(uri);
  }
  return out;
}

/**
 * The emulated links (issue 12 §4), shared by the suites that compare across them (mount, nbd). Rates in bytes
 * per second: 1 Gbit/s = 125 MB/s. withWanProxy(…, linkSpec(link)) builds one: half the RTT each way, and one
 * bandwidth budget shared by every connection through the proxy, as one link is.
 */
export const LINKS = [
  { key: '20ms_1g', label: '20 ms / 1 Gbit/s', rttMs: 20, rate: 125e6 },
  { key: '50ms_1g', label: '50 ms / 1 Gbit/s', rttMs: 50, rate: 125e6 },
  { key: '50ms_100m', label: '50 ms / 100 Mbit/s', rttMs: 50, rate: 12.5e6 },
];

/** The proxy's --inject spec for one of LINKS, plus optional faults. */
export function linkSpec(link, faults = '') {
  return [`latency=${link.rttMs}ms`, `bandwidth=${link.rate}B/s`, faults].filter(Boolean).join(',');
}

/**
 * Starts `thfc-mirror proxy UPSTREAM --listen 127.0.0.1:0 --inject SPEC` (a simulated link, one shared
 * bandwidth budget), runs fn(proxyUrl), stops it; resolves { value, proxy } with the proxy's JSON summary
 * (requests, errors, resets, drips, bytes). A failure carries the summary as `e.proxy`.
 */
export async function withWanProxy(mirrorCli, upstream, inject, fn) {
  const args = [mirrorCli, 'proxy', upstream, '--listen', '127.0.0.1:0', '--json'];
  if (inject) args.push('--inject', inject);
  const proxy = startProcess(process.execPath, args, { stdin: 'ignore' });
  const counters = async () => {
    await proxy.stop({ graceMs: 5000 });
    const line = proxy.output().stdout.trim().split('\n').pop();
    try {
      return line ? JSON.parse(line) : undefined;
    } catch {
      return undefined;
    }
  };
  try {
    const url = (await proxy.waitFor(/proxy (http:\/\/\S+) -> /, 30_000))[1];
    const value = await fn(url);
    return { value, proxy: await counters() };
  } catch (e) {
    e.proxy = await counters(); // what the link did to the attempt that failed
    throw e;
  }
}

/**
 * A static file server on 127.0.0.1, port 0, with single-range support (what nbdkit curl and qemu's curl
 * driver need; thfc needs nothing special). Returns its base URL (ending in /) and close().
 */
export async function serveStatic(root) {
  const { createServer } = await import('node:http');
  const server = createServer(async (req, res) => {
    const path = join(root, normalize(decodeURIComponent((req.url ?? '/').split('?')[0])));
    if (!path.startsWith(root)) return res.writeHead(400).end();
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) return res.writeHead(404).end();
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let [start, end, status] = [0, st.size - 1, 200];
    if (m) {
      [start, end, status] = [Number(m[1]), m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1, 206];
      if (start > end) return res.writeHead(416, { 'content-range': `bytes */${st.size}` }).end();
    }
    const headers = { 'content-length': end - start + 1, 'accept-ranges': 'bytes' };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return res.end();
    createReadStream(path, { start, end }).pipe(res);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/** The first child of a process (nginx's worker), from /proc; undefined if it has none or is gone. */
export function workerPid(masterPid) {
  try {
    const children = readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8').trim().split(/\s+/);
    return children[0] ? Number(children[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** The last `lines` lines of a text file, or '' if it cannot be read. */
export function readTail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------
// Mounts (read from /proc/self/mountinfo: never touches the mounted file system itself)

/** Mount points currently in the mount table, octal escapes decoded. */
export function mountPoints() {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const out = new Set();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field) out.add(field.replace(/\\([0-7]{3})/g, (_m, o) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

export function isMountPoint(path) {
  return mountPoints().has(resolve(path));
}

/**
 * Unmounts a FUSE mount: `fusermount -u`, then (busy or dead daemon) `fusermount -u -z`, then
 * `umount -l`. Never throws; resolves to how it went ('not-mounted' | 'unmounted' | 'lazy' | 'failed').
 */
export async function unmountFuse(path) {
  const abs = resolve(path);
  if (!isMountPoint(abs)) return 'not-mounted';
  for (const [how, cmd, args] of [
    ['unmounted', 'fusermount', ['-u', abs]],
    ['unmounted', 'fusermount3', ['-u', abs]],
    ['lazy', 'fusermount', ['-u', '-z', abs]],
    ['lazy', 'umount', ['-l', abs]],
  ]) {
    try {
      await runCommand(cmd, args, { timeoutMs: 15_000 });
    } catch {}
    if (!isMountPoint(abs)) return how;
  }
  return 'failed';
}

// ---------------------------------------------------------------------------
// An older commit built beside this one (a baseline measured in the same run)

/**
 * Builds the repository at git revision `rev` into `cacheDir`/<commit> (kept: a rebuild only when the
 * commit changes) and returns { commit, root }. The tree comes from `git archive` (no worktree is
 * registered); its node_modules links every package of this checkout's node_modules except the
 * workspace ones, which point into the archived tree, so the old code runs against the same
 * third-party modules (`npm ci` would need the network). Valid while the package-lock is unchanged
 * between the two commits; a changed one is refused.
 */
export async function buildAtRev({ repoRoot, rev, cacheDir, signal, log: say = log }) {
  const git = (...args) => runCommand('git', ['-C', repoRoot, ...args], { signal, timeoutMs: 60_000 });
  const commit = (await git('rev-parse', '--verify', `${rev}^{commit}`)).stdout.trim();
  const lockDiff = await git('diff', '--name-only', commit, 'HEAD', '--', 'package-lock.json');
  if (lockDiff.stdout.trim()) {
    throw new BenchError('BASELINE', `package-lock.json differs between ${rev} and HEAD: build ${rev} by hand`);
  }
  const root = join(cacheDir, commit);
  const done = join(root, '.bench-built');
  if (await stat(done).catch(() => undefined)) return { commit, root };
  await removePath(root);
  await ensureDir(root);
  say(`building ${rev} (${commit.slice(0, 12)}) into ${root} for the baseline`);
  await runCommand('sh', ['-c', `git -C '${repoRoot}' archive ${commit} | tar -x -C '${root}'`], { signal });
  const modules = await ensureDir(join(root, 'node_modules'));
  for (const name of await readdir(join(repoRoot, 'node_modules'))) {
    const from = join(repoRoot, 'node_modules', name);
    if (name !== '@thfc') await symlink(from, join(modules, name));
  }
  await ensureDir(join(modules, '@thfc'));
  for (const name of await readdir(join(root, 'packages'))) {
    await symlink(join('..', '..', 'packages', name), join(modules, '@thfc', name));
  }
  await runCommand(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], {
    cwd: root,
    signal,
  });
  await writeFile(done, `${commit}\n`);
  return { commit, root };
}

// ---------------------------------------------------------------------------
// Test image (limits.md recipe 1), shared so the pack and mount suites measure the same image

/** Bump when the image recipe changes, so a cached image from an older recipe is rebuilt. */
export const TEST_IMAGE_RECIPE = 1;
/** Parts of /usr that make a realistic root-ish filesystem: binaries, Python, Perl, locale data, vim runtime. */
const TEST_IMAGE_SOURCES = ['/usr/bin', '/usr/lib/python3*', '/usr/share/perl', '/usr/share/i18n', '/usr/share/vim'];
/** limits.md's reference image is 512 MiB; it is never smaller, so figures stay comparable. */
const TEST_IMAGE_MIN_BYTES = 512 * MiB;
/** Size = staged bytes × 1.15 + 64 MiB (ext4 metadata and journal), in 64 MiB steps: ~15-25 % free space as zeros. */
const TEST_IMAGE_SLACK_FACTOR = 1.15;
const TEST_IMAGE_SLACK_BYTES = 64 * MiB;
const TEST_IMAGE_SIZE_STEP = 64 * MiB;
/** Below this much free space the image would not exercise zero-block elision. */
const TEST_IMAGE_MIN_FREE_FRACTION = 0.05;

async function validTestImage(cacheDir, requested) {
  const path = join(cacheDir, 'image.img');
  try {
    const manifest = JSON.parse(readFileSync(join(cacheDir, 'image.json'), 'utf8'));
    const st = await stat(path);
    if (manifest.recipe === TEST_IMAGE_RECIPE && manifest.requested === requested && st.size === manifest.bytes) {
      return { path, cached: true, ...manifest };
    }
  } catch {}
  return undefined;
}

/**
 * The realistic ext4 test image (limits.md recipe 1): `mkfs.ext4 -d` over a copy of parts of /usr,
 * rewritten with `cp --sparse=never` so its free space is real zero bytes. Cached in `cacheDir`
 * (image.img + image.json; the pack suite builds it in its own directory); a valid image in one of
 * `reuseDirs` (e.g. the pack suite's cache) is used in place instead of building another.
 * $BENCH_IMAGE_MIB overrides the size.
 * @returns {Promise<{path: string, cached: boolean, bytes: number, freeBytes: number}>}
 */
export async function ensureTestImage({ cacheDir, reuseDirs = [], signal, log: say = log }) {
  const requested = process.env.BENCH_IMAGE_MIB ? Number(process.env.BENCH_IMAGE_MIB) * MiB : 'auto';
  for (const dir of [cacheDir, ...reuseDirs]) {
    const found = await validTestImage(dir, requested);
    if (found) return found;
  }
  await ensureDir(cacheDir);
  const path = join(cacheDir, 'image.img');
  const manifestPath = join(cacheDir, 'image.json');
  const t0 = nowSeconds();
  const stage = join(cacheDir, 'stage');
  const sparse = join(cacheDir, 'image.sparse');
  const tmp = join(cacheDir, 'image.tmp');
  const cleanup = () => Promise.all([stage, sparse, tmp].map(removePath));
  await cleanup();
  await removePath(manifestPath);
  try {
    const sources = [];
    for (const pattern of TEST_IMAGE_SOURCES) {
      const slash = pattern.lastIndexOf('/');
      const dir = pattern.slice(0, slash);
      const base = pattern.slice(slash + 1);
      const names = base.endsWith('*')
        ? (await readdir(dir).catch(() => [])).filter((n) => n.startsWith(base.slice(0, -1))).sort()
        : [base];
      for (const name of names) {
        const st = await stat(join(dir, name)).catch(() => undefined);
        if (st?.isDirectory()) sources.push(join(dir, name));
      }
    }
    if (sources.length === 0) throw new BenchError('NO_SOURCES', `none of ${TEST_IMAGE_SOURCES.join(' ')} exist`);
    say(`building test image from ${sources.join(' ')} (once; cached in ${cacheDir})`);
    for (const src of sources) {
      const parent = join(stage, src.slice(1, src.lastIndexOf('/')));
      await ensureDir(parent);
      await runCommand('cp', ['-a', src, `${parent}/`], { signal });
    }
    const du = await runCommand('du', ['-s', '--block-size=1', stage], { signal });
    const stagedBytes = Number(du.stdout.split(/\s/)[0]);
    const auto =
      Math.ceil((stagedBytes * TEST_IMAGE_SLACK_FACTOR + TEST_IMAGE_SLACK_BYTES) / TEST_IMAGE_SIZE_STEP) *
      TEST_IMAGE_SIZE_STEP;
    const bytes = requested === 'auto' ? Math.max(TEST_IMAGE_MIN_BYTES, auto) : requested;
    await runCommand('truncate', ['-s', String(bytes), sparse], { signal });
    const mkfsArgs = ['-q', '-F', '-b', '4096', '-E', 'lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0'];
    await runCommand('mkfs.ext4', [...mkfsArgs, '-d', stage, sparse], { signal });
    await removePath(stage);
    await runCommand('cp', ['--sparse=never', sparse, tmp], { signal });
    const { stdout } = await runCommand('dumpe2fs', ['-h', tmp], { signal });
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(stdout)?.[1]);
    const freeBytes = field('Free blocks') * field('Block size');
    if (freeBytes < TEST_IMAGE_MIN_FREE_FRACTION * bytes) {
      throw new BenchError(
        'IMAGE_FULL',
        `test image has only ${freeBytes} free bytes of ${bytes}; raise BENCH_IMAGE_MIB`,
      );
    }
    const manifest = {
      recipe: TEST_IMAGE_RECIPE,
      requested,
      bytes,
      sources,
      stagedBytes,
      freeBytes,
      builtAt: new Date().toISOString(),
      buildSeconds: Number((nowSeconds() - t0).toFixed(1)),
    };
    await rename(tmp, path);
    await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    say(`built ${path}: ${(bytes / MiB).toFixed(0)} MiB, ${(freeBytes / MiB).toFixed(0)} MiB free`);
    return { path, cached: false, ...manifest };
  } finally {
    await cleanup();
  }
}
