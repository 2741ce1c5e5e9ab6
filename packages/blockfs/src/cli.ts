#!/usr/bin/env node
import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_MEASUREMENT_PCR, MeasurementLog } from '@thfc/attest/measurement-log';
import {
  count,
  ignoreClosedOutput,
  notifySystemdReady,
  oneLine,
  oneLineParseErrors,
  processShell,
  reportError,
  seconds,
  size,
} from '@thfc/cli';
import { releaseHeldSignals } from '@thfc/cli/early-signals';
import {
  BusyError,
  combineTrustStores,
  EXIT,
  IncompleteError,
  MirrorUnavailableError,
  trustStoreOfKeys,
  UsageError,
} from '@thfc/format';
import { isMounted, LineLogger, lazyUnmount, readPublicKey, readTrustStore, unmountIfIdle } from '@thfc/store';
import { Command, CommanderError, type OptionValues } from 'commander';
import { isRunning } from './cache/process-identity.js';
import { DEFAULT_CACHE_DIR } from './cache-dir.js';
import { DEFAULT_LOG, daemonize } from './daemonize.js';
import { LogFile } from './log-file.js';
import type { MountStatus } from './mount.js';
import { VersionSwitcher } from './version-switch.js';

// The mount (fuse-native, undici, the worker pool), trust-store reading and the TPM are loaded only where
// they are used: `httpstorged MNT URL` starts a daemon that loads them, and the command waiting for it
// need not (~140 ms of its start-up, and every boot through thfc-vm waits for it).

/**
 * httpstorged: the mount daemon, in the original's shape:
 *   httpstorged [-f] MOUNTPOINT INDEX-URL…
 *   httpstorged nbd [-f] (--socket PATH | --listen HOST:PORT) INDEX-URL…
 *   httpstorged umount MOUNTPOINT
 *   httpstorged stats MOUNTPOINT|SOCKET [--json]
 *   httpstorged measurements MOUNTPOINT|SOCKET
 *   httpstorged fsck CACHE [--json]
 *   httpstorged list [--json]
 *   httpstorged cache [prune --to SIZE] CACHE [--json]
 * With bin.ts and daemonize.ts (the background start), where `process` is touched; errors become exit codes
 * here (reportError).
 */

const secondsOrZero = (flag: string) => (v: string) => (v.trim() === '0' ? 0 : seconds(flag)(v));
const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The options of a mount that choose and fetch the images, shared by the mount and `nbd`, in their help's order. */
function sourceOptions(cmd: Command): Command {
  for (const add of [mirrorOptions, cacheOptions, trustOptions, transferOptions, profileOptions, daemonOptions])
    add(cmd);
  return cmd;
}

/** Where the blocks come from: mirrors given, or found through DNS-Balance. */
function mirrorOptions(cmd: Command): Command {
  return cmd
    .option(
      '--mirror <base-url>',
      'block store base URL to fetch from instead of the index directory (repeatable, in order)',
      collect,
    )
    .option(
      '--pool <zone>',
      'find mirrors through DNS-Balance (SRV, then TXT, then A), re-resolved as the TTL runs out; a bare NAME or NAME.idx index is fetched from them',
    )
    .option('--dns <host:port>', 'the DNS server to ask for --pool (default: the system resolvers)');
}

/** The disk and memory caches, and how far a cached block is trusted. */
function cacheOptions(cmd: Command): Command {
  return cmd
    .option('--cache <dir>', 'block cache directory shared by all images', DEFAULT_CACHE_DIR)
    .option('--cache-size <bytes>', 'cap the disk cache (LRU between a high and a low watermark)', size('--cache-size'))
    .option('--memory-cache <bytes>', 'RAM for recently used blocks', size('--memory-cache'))
    .option('--nocache', 'keep blocks in RAM only, as the original')
    .option('--offline', 'never touch the network: a block that is not cached gives EIO')
    .option('--paranoid', 'verify cached blocks on every use, not only the first after start');
}

/** Which indexes are trusted, which version is mounted, and what is measured (and into which TPM). */
function trustOptions(cmd: Command): Command {
  return cmd
    .option(
      '--trust <pubkey>',
      'refuse an index without a valid signature by this key (file or base64; repeatable)',
      collect,
    )
    .option(
      '--trust-store <path>',
      'trust-store file or directory: keys with expiry, scope and revocations (docs/TRUST.md; repeatable)',
      collect,
    )
    .option(
      '--pin <digest>',
      "mount exactly this version (sha256:<hex>) of the one image, from the store's retained versions if need be; the same as URL#sha256:<hex>",
    )
    .option(
      '--check-interval <seconds>',
      'revalidate each http(s) index this often and report a newer version in the log, stats and .thfc/NAME.update (default 600; 0: never)',
      secondsOrZero('--check-interval'),
    )
    .option(
      '--allow-invalid-signature',
      'mount an index whose signature does not verify (a sign of tampering: refused otherwise, exit 4)',
    )
    .option('--measure-blocks', 'also measure each block the first time it is read (MOUNTPOINT/.thfc/measurements)')
    .option('--tpm', 'extend every measurement into a TPM PCR too, through tpm2-tools')
    .option('--tpm-pcr <n>', `the PCR measurements extend (default ${DEFAULT_MEASUREMENT_PCR})`, count('--tpm-pcr', 0))
    .option('--tpm-tcti <tcti>', 'how to reach the TPM, e.g. swtpm:host=127.0.0.1,port=2321 (default: tpm2-tools own)');
}

/** How blocks are fetched: requests in flight, read-ahead, slow and failed transfers, proxy. */
function transferOptions(cmd: Command): Command {
  return cmd
    .option(
      '--connections <n>',
      'pin the requests in flight per mirror at N (default: adaptive, from 16 up to --max-connections)',
      count('--connections', 1),
    )
    .option(
      '--max-connections <n>',
      'most requests in flight per mirror when adaptive (default 32)',
      count('--max-connections', 1),
    )
    .option(
      '--readahead <n>',
      'most blocks read ahead of a sequential reader; it starts at 4 and doubles as the stream goes on (default: 16 MiB of blocks)',
      count('--readahead', 0),
    )
    .option(
      '--low-speed <bytes>',
      'abandon a transfer moving less than BYTES per second for --low-speed-time, and hedge one whose body starts below 4 × that (default 1K; 0: off)',
      size('--low-speed'),
    )
    .option(
      '--low-speed-time <seconds>',
      'how long a transfer may stay below --low-speed (default 2)',
      seconds('--low-speed-time'),
    )
    .option('--http2', 'offer HTTP/2 to https mirrors: one connection carries every request (see docs)')
    .option('--timeout <seconds>', 'per-request timeout', seconds('--timeout'))
    .option(
      '--retries <n>',
      'rounds over all mirrors before a read fails with EIO (default: 2, or 3 with a single mirror)',
      count('--retries', 1),
    )
    .option('--proxy <url>', 'HTTP proxy (default: $http_proxy)');
}

/** Boot profiles, recorded and replayed, and the background fill. */
function profileOptions(cmd: Command): Command {
  return cmd
    .option('--record-profile <file>', 'record the blocks readers touch (a boot profile) into FILE at unmount')
    .option(
      '--prefetch <file-or-url>',
      'replay this boot profile at mount (default: NAME.profile beside the index, if published)',
    )
    .option('--no-prefetch', 'do not replay a published boot profile')
    .option('--prefetch-parallel <n>', 'profile blocks fetched at once', count('--prefetch-parallel', 1))
    .option('--prefetch-rate <bytes>', 'cap prefetch and fill at BYTES per second', size('--prefetch-rate'))
    .option('--fill', 'after the profile, fetch the rest of the image in the background until it is all cached');
}

/** The daemon's log and its readiness report. */
function daemonOptions(cmd: Command): Command {
  return cmd
    .option('--verbose', 'log one line per block fetch')
    .option('--log <file>', `log file (default: ${DEFAULT_LOG} in the background, stderr with -f); SIGHUP reopens it`)
    .option('--ready-fd <fd>', '(internal) report readiness on this fd', count('--ready-fd', 3));
}

type Mounted = Awaited<ReturnType<typeof import('./mount.js').mountImages>>;

/** A mount (the default command); `argv`: its arguments, to start the daemon with. */
async function runMount(mountpoint: string, indexes: string[], o: OptionValues, argv: string[]): Promise<number> {
  if (o.pin !== undefined && indexes.length > 1)
    throw new UsageError('--pin pins one image; to pin several, end each URL with #sha256:<hex>');
  if (!o.foreground) return daemonize(argv, o.log ?? DEFAULT_LOG);

  const readyFd: number | undefined = o.readyFd;
  let logFile: LogFile | undefined;
  try {
    logFile = o.log ? new LogFile(resolve(o.log)) : undefined;
  } catch (e) {
    return failStart(e, readyFd);
  }
  const logger = new LineLogger(logFile ? (l) => logFile.write(l) : (l) => process.stderr.write(l), !!o.verbose);
  // Version switches (SIGUSR2 from `httpstorged switch`, or --auto-switch) remount the same arguments once idle.
  const switching = new AbortController();
  let mount: SwitchableMount;
  try {
    mount = await mountSwitchable(mountpoint, indexes, o, {
      logger,
      switching: switching.signal,
      remounted: () => takeSignals(),
    });
  } catch (e) {
    return failStart(e, readyFd);
  }
  // libfuse installs its own SIGINT/SIGTERM handlers when it mounts (and remounts); installing ours afterwards
  // puts them back in charge.
  const current = mount.mounted;
  const takeSignals = unmountOnSignals(current, logger, switching);
  takeSignals();
  // `httpstorged switch`: move to the versions the index locations publish now, once nothing uses the images.
  process.on('SIGUSR2', () => void mount.switcher.request('SIGUSR2', switching.signal).catch(() => {}));
  reopenLogOnHangup(logFile, logger);
  // A stray rejection is a bug, but the guest's disk must not vanish for it: log it and keep serving.
  process.on('unhandledRejection', (e) =>
    logger.fault(`internal error (unhandled rejection): ${(e as Error)?.stack ?? e}`),
  );
  process.on('uncaughtException', (e) => {
    logger.fault(`internal error: ${e.stack ?? e}`);
    void current()
      .unmount()
      .finally(() => process.exit(EXIT.SOFTWARE));
  });
  void tellSystemdReady(logger);
  if (readyFd !== undefined) report(readyFd, { ok: true, pid: process.pid });
  else
    process.stderr.write(`httpstorged: mounted at ${current().mountpoint} (pid ${process.pid}); Ctrl-C to unmount\n`);
  return new Promise<number>(() => {}); // serve until a signal
}

/** A mount and the VersionSwitcher that replaces it; `mounted()` is the mount as it is now. */
interface SwitchableMount {
  readonly mounted: () => Mounted;
  readonly switcher: VersionSwitcher;
}

/**
 * Mounts the images, with a VersionSwitcher that remounts the same arguments (or, as a fallback, the versions
 * it names); `remounted` runs after each remount. Every failure, a module that cannot load (fuse-native without
 * libfuse2) or a bad key included, rejects: the caller reports it through --ready-fd like any other.
 */
async function mountSwitchable(
  mountpoint: string,
  indexes: string[],
  o: OptionValues,
  { logger, switching, remounted }: { logger: LineLogger; switching: AbortSignal; remounted: () => void },
): Promise<SwitchableMount> {
  const { mountImages } = await import('./mount.js');
  const settings = await sourceSettings(o, indexes);
  const measurements = await openMeasurements(o);
  const args = { mountpoint, allowOther: o.allowOther, ...settings };
  let mounted: Mounted;
  const components = {
    logger,
    env: process.env,
    measurements,
    switchStatus: () => switcher.status(),
    onVersionUpdate: o.autoSwitch
      ? (name: string) => void switcher.request(`--auto-switch: a newer version of ${name}`, switching)
      : undefined,
  };
  const remount = async (a: typeof args) => {
    mounted = await mountImages(a, components);
    remounted();
    return mounted;
  };
  const switcher = new VersionSwitcher({
    current: () => mounted,
    remount: () => remount(args),
    fallback: (digests) => {
      const pins = [...digests.values()];
      return remount({
        ...args,
        pin: undefined,
        indexes: indexes.map((a, i) => `${a.replace(/#.*$/, '')}#${pins[i]}`),
      });
    },
    logger,
  });
  mounted = await mountImages(args, components);
  return { mounted: () => mounted, switcher };
}

/**
 * A first SIGINT/SIGTERM unmounts once nothing uses the images (serving until then); a second detaches at once.
 * Returns what installs the handlers, again after each remount (libfuse installs its own at each mount).
 */
function unmountOnSignals(current: () => Mounted, logger: LineLogger, switching: AbortController): () => void {
  let stopping: AbortController | undefined;
  const stop = async (why: string) => {
    switching.abort();
    if (stopping) {
      logger.info(`${why} again: detaching ${current().mountpoint} now, in use or not`);
      stopping.abort();
      return;
    }
    stopping = new AbortController();
    logger.info(`${why}: unmounting`);
    const { unmountWhenIdle } = await import('./unmount-waiter.js');
    const { findHolders, describeHolders } = await import('./mount-holders.js');
    const mountpoint = current().mountpoint;
    const outcome = await unmountWhenIdle(
      {
        mounted: current(),
        logger,
        holders: async () => describeHolders(await findHolders(mountpoint), mountpoint),
      },
      { why, signal: stopping.signal },
    );
    if (outcome === 'forced') await current().unmount();
    process.exit(EXIT.INTERRUPTED);
  };
  return () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.removeAllListeners(sig);
      process.on(sig, () => void stop(sig));
    }
  };
}

/** logrotate's `postrotate … kill -HUP`: a new log file under the old name; the mount is left alone. */
function reopenLogOnHangup(logFile: LogFile | undefined, logger: LineLogger): void {
  process.removeAllListeners('SIGHUP');
  process.on('SIGHUP', () => {
    if (!logFile) return logger.info('SIGHUP: logging to stderr, no log file to reopen');
    try {
      logFile.reopen();
      logger.info(`SIGHUP: reopened the log file ${logFile.path}`);
    } catch (e) {
      logger.fault(`SIGHUP: ${(e as Error).message}; still logging to the old file`);
    }
  });
}

/** The settings `sourceOptions` gave, as mountImages and serveImages take them (trust keys read). */
async function sourceSettings(o: OptionValues, indexes: string[]) {
  const trust = o.trust ? await Promise.all((o.trust as string[]).map(readPublicKey)) : undefined;
  const trustStore = o.trustStore
    ? combineTrustStores(await readTrustStore(o.trustStore), trustStoreOfKeys(trust ?? []))
    : undefined;
  return {
    indexes,
    mirrors: o.mirror as string[] | undefined,
    pool: o.pool as string | undefined,
    dns: o.dns as string | undefined,
    cacheDir: o.cache as string | undefined,
    cacheSize: o.cacheSize as number | undefined,
    memoryCache: o.memoryCache as number | undefined,
    nocache: o.nocache as boolean | undefined,
    offline: o.offline as boolean | undefined,
    paranoid: o.paranoid as boolean | undefined,
    trust,
    trustStore,
    pin: o.pin as string | undefined,
    checkIntervalMs: o.checkInterval === undefined ? undefined : (o.checkInterval as number) * 1000,
    allowInvalidSignature: o.allowInvalidSignature as boolean | undefined,
    measureBlocks: o.measureBlocks as boolean | undefined,
    connections: o.connections as number | undefined,
    maxConnections: o.maxConnections as number | undefined,
    readahead: o.readahead as number | undefined,
    lowSpeedBps: o.lowSpeed as number | undefined,
    lowSpeedTimeMs: o.lowSpeedTime === undefined ? undefined : (o.lowSpeedTime as number) * 1000,
    http2: o.http2 as boolean | undefined,
    timeoutMs: o.timeout === undefined ? undefined : (o.timeout as number) * 1000,
    retries: o.retries as number | undefined,
    proxy: o.proxy as string | undefined,
    recordProfile: o.recordProfile as string | undefined,
    prefetch: o.prefetch === false ? undefined : (o.prefetch as string | undefined),
    noPrefetch: o.prefetch === false,
    prefetchParallel: o.prefetchParallel as number | undefined,
    prefetchRate: o.prefetchRate as number | undefined,
    fill: o.fill as boolean | undefined,
  };
}

/** `httpstorged nbd`: serves the images until a signal; in the background unless -f. */
async function runNbd(indexes: string[], o: OptionValues, argv: string[]): Promise<number> {
  const listen = await nbdListen(o);
  if (!o.foreground) return daemonize(argv, o.log ?? DEFAULT_LOG, { sub: 'nbd', done: 'serving' });

  const readyFd: number | undefined = o.readyFd;
  const logger = new LineLogger((l) => process.stderr.write(l), !!o.verbose);
  let serving: Awaited<ReturnType<typeof import('./nbd-serve.js').serveImages>>;
  try {
    const { serveImages } = await import('./nbd-serve.js');
    const settings = await sourceSettings(o, indexes);
    const measurements = await openMeasurements(o);
    serving = await serveImages(
      { ...settings, listen, maxClients: o.maxClients },
      { logger, env: process.env, measurements },
    );
  } catch (e) {
    return failStart(e, readyFd);
  }
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${why}: stopping; the requests in flight are answered first`);
    await serving.close();
    process.exit(EXIT.OK);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop(sig));
  // In the foreground SIGHUP is the terminal going away: stop.
  const hangUp =
    readyFd === undefined ? () => void stop('SIGHUP') : handOverOnHangup(listen, argv, o, logger, () => stopping);
  process.on('SIGHUP', hangUp);
  // A client's bug must not take every other client's disk: log it and keep serving.
  process.on('unhandledRejection', (e) =>
    logger.fault(`internal error (unhandled rejection): ${(e as Error)?.stack ?? e}`),
  );
  process.on('uncaughtException', (e) => logger.fault(`internal error: ${e.stack ?? e}`));
  if (serving.replaced !== undefined && serving.replaced !== process.pid) {
    logger.info(`took ${listenText(listen)} over; stopping the daemon that served it (pid ${serving.replaced})`);
    try {
      process.kill(serving.replaced, 'SIGTERM');
    } catch {
      // gone already
    }
  }
  void tellSystemdReady(logger);
  if (readyFd !== undefined) report(readyFd, { ok: true, pid: process.pid, at: listenText(listen) });
  else process.stderr.write(`httpstorged: serving at ${serving.address} (pid ${process.pid}); Ctrl-C to stop\n`);
  return new Promise<number>(() => {}); // serve until a signal
}

/**
 * SIGHUP to a background NBD daemon: a planned restart. A new daemon (this program as it is on disk now, with the
 * same arguments) takes the socket over with --replace, then stops this one, which answers what is in flight
 * first. Returns the SIGHUP handler; one restart at a time, none once the daemon is stopping.
 */
function handOverOnHangup(
  listen: Listen,
  argv: string[],
  o: OptionValues,
  logger: LineLogger,
  stopping: () => boolean,
): () => void {
  let restarting = false;
  return () => {
    if (restarting || stopping() || listen.kind !== 'unix') {
      if (listen.kind !== 'unix') logger.fault('SIGHUP: a TCP listener cannot be handed over; ignored');
      return;
    }
    restarting = true;
    logger.info('SIGHUP: starting a new daemon to take the socket over');
    void daemonize([...daemonArgs(argv), '--replace'], o.log ?? DEFAULT_LOG, { sub: 'nbd', done: 'restarted' })
      .then((code) => {
        if (code !== EXIT.OK) logger.fault(`SIGHUP: the new daemon did not start (exit ${code}); serving on`);
      })
      .finally(() => {
        restarting = false;
      });
  };
}

/** The user's arguments of a daemon, without those daemonize() and --replace added. */
function daemonArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-f' || a === '--foreground' || a === '--replace' || a.startsWith('--ready-fd=')) continue;
    if (a === '--ready-fd') {
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

type Listen = import('./nbd/server.js').NbdListen;

function listenText(l: Listen): string {
  return l.kind === 'unix' ? l.path : `${l.host}:${l.port}`;
}

/** --socket PATH (with --group) or --listen HOST:PORT: exactly one. */
async function nbdListen(o: { socket?: string; listen?: string; group?: string; replace?: boolean }): Promise<Listen> {
  if (!o.socket === !o.listen) throw new UsageError('give one of --socket PATH or --listen HOST:PORT');
  if (o.socket) {
    const gid = o.group ? await groupId(o.group) : undefined;
    return { kind: 'unix', path: resolve(o.socket), gid, replace: o.replace };
  }
  if (o.group) throw new UsageError('--group shares a Unix socket: it needs --socket');
  if (o.replace) throw new UsageError('--replace takes a Unix socket over: it needs --socket');
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(o.listen as string);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--listen wants HOST:PORT, not "${o.listen}"`);
  return { kind: 'tcp', host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** A group by number, or by name from /etc/group. */
async function groupId(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.split(':')[0] === group);
  if (!line) throw new UsageError(`--group: no group named ${group}`);
  return Number(line.split(':')[2]);
}

/** The mount's measurement log; with --tpm, the TPM is checked first (reachable, PCR still at zero). */
async function openMeasurements(o: { tpm?: boolean; tpmPcr?: number; tpmTcti?: string }): Promise<MeasurementLog> {
  const pcr = o.tpmPcr ?? DEFAULT_MEASUREMENT_PCR;
  if (pcr > 23) throw new UsageError(`--tpm-pcr must be a PCR number 0-23, not ${pcr}`);
  if (!o.tpm) {
    if (o.tpmTcti) throw new UsageError('--tpm-tcti needs --tpm');
    return new MeasurementLog({}, { pcr });
  }
  // The TPM's code only with --tpm: the rest of @thfc/attest is ~11 modules of every daemon's start.
  const { Tpm2Tools, TpmExtender } = await import('@thfc/attest');
  const extender = new TpmExtender({ tpm: new Tpm2Tools({ tcti: o.tpmTcti }) });
  await extender.open(pcr);
  return new MeasurementLog({ extender }, { pcr });
}

/** Under systemd as a `Type=notify` service (contrib/systemd/): ready now. A failure is logged, not fatal. */
async function tellSystemdReady(logger: { fault(message: string): void }): Promise<void> {
  const problem = await notifySystemdReady(process.env, process.pid);
  if (problem) logger.fault(problem);
}

/** A daemon that could not start: the error on stderr, and through --ready-fd to the command waiting for it. */
function failStart(e: unknown, readyFd: number | undefined): number {
  const code = reportError('httpstorged', e);
  if (readyFd !== undefined) report(readyFd, { ok: false, code, message: e instanceof Error ? e.message : String(e) });
  return code;
}

/** --ready-fd N as given to a daemon, read from its arguments (for a failure before they were parsed). */
function readyFdOf(args: readonly string[]): number | undefined {
  const i = args.findIndex((a) => a === '--ready-fd' || a.startsWith('--ready-fd='));
  if (i < 0) return undefined;
  const a = args[i] as string;
  const n = Number(a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[i + 1]);
  return Number.isInteger(n) && n >= 3 ? n : undefined;
}

/** A start's failure in one line, as the command waiting for the daemon prints it after `httpstorged: `. */
function startFailure(e: unknown): string {
  if (e instanceof CommanderError)
    return oneLine('httpstorged', e.message, 'httpstorged nbd').replace(/^httpstorged: /, '');
  return e instanceof Error ? e.message : String(e);
}

function report(fd: number, msg: Record<string, unknown>): void {
  const s = createWriteStream('', { fd });
  s.on('error', () => {}); // a --ready-fd that is not open: the exit code still tells
  s.end(`${JSON.stringify(msg)}\n`);
}

async function readStatus(mountpoint: string): Promise<MountStatus> {
  try {
    return JSON.parse(await readFile(join(mountpoint, '.thfc', 'stats.json'), 'utf8')) as MountStatus;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN')
      throw new UsageError(
        `${mountpoint}: stale mount (its daemon died); clear it with: httpstorged umount ${mountpoint}`,
      );
    throw new UsageError(`${mountpoint} is not an httpstorged mount`);
  }
}

/** How long `umount` waits for the daemon to exit once its mount is gone: it seals the cache first (a sync). */
const DAEMON_EXIT_MS = 15_000;

/**
 * Unmounts only if nothing uses the mount, then stops the daemon and waits
 * for it. A busy mount is a BusyError naming what holds it, with nothing
 * changed; `--lazy` detaches it instead and leaves the daemon serving its
 * last users (it exits after them).
 */
async function runUmount(target: string, lazy: boolean): Promise<number> {
  const mountpoint = resolve(target);
  if (!(await isMounted(mountpoint))) throw new UsageError(`${mountpoint} is not mounted`);
  let status: MountStatus | undefined;
  try {
    status = await readStatus(mountpoint);
  } catch {
    await lazyUnmount(mountpoint);
    process.stdout.write(`httpstorged: cleared the stale mount at ${mountpoint}\n`);
    return EXIT.OK;
  }
  const { findHolders, describeHolders } = await import('./mount-holders.js');
  const busy = (who: string) =>
    new BusyError(
      `${mountpoint} is busy, left mounted: ${who || 'in use by processes this user cannot see'}; close them, or detach it anyway with: httpstorged umount --lazy ${mountpoint}`,
    );
  const holders = await findHolders(mountpoint);
  if (holders.length && !lazy) throw busy(describeHolders(holders, mountpoint));
  // The kernel has the last word: a user this process cannot see still makes it refuse (EBUSY).
  const outcome = holders.length ? 'busy' : await unmountIfIdle(mountpoint);
  if (outcome === 'busy') {
    if (!lazy) throw busy(describeHolders(await findHolders(mountpoint), mountpoint));
    await lazyUnmount(mountpoint);
  }
  try {
    process.kill(status.pid, 'SIGTERM');
  } catch {
    // the daemon is gone already
  }
  if (outcome === 'busy') {
    process.stdout.write(
      `httpstorged: detached ${mountpoint} lazily; its daemon (pid ${status.pid}) serves the users it still has and exits after the last\n`,
    );
    return EXIT.OK;
  }
  for (const end = Date.now() + DAEMON_EXIT_MS; isRunning(status.pid) && Date.now() < end; )
    await new Promise((r) => setTimeout(r, 50));
  const [mounted, running] = [await isMounted(mountpoint), isRunning(status.pid)];
  const daemon = `its daemon (pid ${status.pid})`;
  if (running || mounted)
    throw new IncompleteError(
      !mounted
        ? `${mountpoint} is unmounted, but ${daemon} is still running after ${DAEMON_EXIT_MS / 1000} s; see its log`
        : running
          ? `${mountpoint} is still mounted and ${daemon} still running after ${DAEMON_EXIT_MS / 1000} s; see its log`
          : `${daemon} exited, but ${mountpoint} is still mounted; clear it with: httpstorged umount ${mountpoint}`,
    );
  process.stdout.write(`httpstorged: unmounted ${mountpoint}\n`);
  return EXIT.OK;
}

/** Prints MOUNTPOINT/.thfc/measurements, the mount's measurement log, without the status file's padding. */
async function runMeasurements(target: string): Promise<number> {
  const nbd = await nbdTarget(target);
  let text: string;
  if (nbd) text = await readNbdStatusFile(nbd, 'measurements');
  else {
    const mountpoint = resolve(target);
    await readStatus(mountpoint); // the same clear errors as stats for a stale or foreign mount
    text = (await readFile(join(mountpoint, '.thfc', 'measurements'), 'latin1')).replace(/ +\n?$/, '');
  }
  // The kernel may clip a read of a growing status file at an older size: print whole lines only.
  process.stdout.write(text.slice(0, text.lastIndexOf('\n') + 1));
  return EXIT.OK;
}

/** An NBD daemon's address when `target` names one (a Unix socket, or HOST:PORT); undefined for a mountpoint. */
async function nbdTarget(target: string): Promise<import('./nbd/status-client.js').NbdAddress | undefined> {
  const tcp = /^(?:\[([^\]]+)\]|([^/:]+)):(\d+)$/.exec(target);
  if (tcp) return { host: (tcp[1] ?? tcp[2]) as string, port: Number(tcp[3]) };
  const st = await stat(target).catch(() => undefined);
  return st?.isSocket() ? { path: resolve(target) } : undefined;
}

/** A status file of an NBD daemon (a hidden export) or of a mount (MOUNTPOINT/.thfc/NAME). */
async function readNbdStatusFile(where: import('./nbd/status-client.js').NbdAddress, name: string): Promise<string> {
  const { readNbdExport, NBD_STATS_EXPORT, NBD_MEASUREMENTS_EXPORT } = await import('./nbd/status-client.js');
  const exportName = name === 'stats.json' ? NBD_STATS_EXPORT : NBD_MEASUREMENTS_EXPORT;
  return (await readNbdExport(where, exportName, AbortSignal.timeout(10_000))).toString('utf8');
}

/** The status of a mount or an NBD daemon; none named: every mount, as `list`. */
async function runStats(target: string | undefined, json: boolean): Promise<number> {
  if (target === undefined) return printMountList(json);
  const nbd = await nbdTarget(target);
  const status = nbd
    ? (JSON.parse(await readNbdStatusFile(nbd, 'stats.json')) as import('./nbd-serve.js').NbdStatus)
    : await readStatus(resolve(target));
  const { formatStatus } = await import('./status-text.js');
  process.stdout.write(json ? `${JSON.stringify(status)}\n` : formatStatus(status));
  return EXIT.OK;
}

/** `httpstorged list`: every httpstorged mount of the machine (NBD daemons register nowhere: see the docs). */
async function printMountList(json: boolean): Promise<number> {
  const { listMounts, formatMountList } = await import('./mount-list.js');
  const mounts = await listMounts(AbortSignal.timeout(LIST_TIMEOUT_MS));
  process.stdout.write(json ? `${JSON.stringify(mounts)}\n` : formatMountList(mounts));
  return EXIT.OK;
}

/** `list` gives up after this long: a status file is read in milliseconds unless a daemon hangs. */
const LIST_TIMEOUT_MS = 30_000;

/** `httpstorged cache CACHE`: usage and per-image coverage; `httpstorged cache prune CACHE --to SIZE` trims it. */
async function runCache(cache: string, json: boolean): Promise<number> {
  const { cacheReport, formatCacheReport } = await import('./cache-usage.js');
  const report = await cacheReport(resolve(cache));
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : formatCacheReport(report));
  return EXIT.OK;
}

async function runCachePrune(cache: string, o: { to: number; json?: boolean }): Promise<number> {
  const { runPrune, formatPruneReport } = await import('./cache-prune.js');
  const report = await runPrune({ cache: resolve(cache), toBytes: o.to });
  process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatPruneReport(report));
  return report.failed ? EXIT.IO : EXIT.OK;
}

/** Hashes every entry of a cache, drops bad ones, seals it again; exit 1 if it dropped anything. */
async function runFsckCommand(cache: string, json: boolean): Promise<number> {
  const { runFsck, formatFsckReport } = await import('./fsck.js');
  const report = await runFsck({ cache: resolve(cache) }, processShell().io(json));
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : formatFsckReport(report));
  return report.ok ? EXIT.OK : EXIT.CHECK_FAILED;
}

/** How long `switch` waits for the daemon's answer by default: a version check is one request per image. */
const DEFAULT_SWITCH_WAIT_S = 30;

/**
 * `httpstorged switch MOUNTPOINT [NAME]`: asks the daemon (SIGUSR2) to move
 * to the versions its index locations publish now, once nothing uses the
 * images, and waits for its answer: switched or up to date (exit 0), still
 * in use (BusyError: the daemon switches as soon as it is idle), or failed.
 */
async function runSwitch(
  target: string,
  name: string | undefined,
  o: { wait?: number; json?: boolean },
): Promise<number> {
  const mountpoint = resolve(target);
  const before = await readStatus(mountpoint);
  if (name !== undefined && !before.images.some((i) => i.name === name))
    throw new UsageError(`${mountpoint} has no image ${name} (it has ${before.images.map((i) => i.name).join(', ')})`);
  const asked = (before.switch?.requests ?? 0) + 1;
  process.kill(before.pid, 'SIGUSR2');
  const deadline = Date.now() + (o.wait ?? DEFAULT_SWITCH_WAIT_S) * 1000;
  let s = before.switch;
  for (;;) {
    // While the daemon remounts, its status file is briefly gone: keep asking.
    const now = await readStatus(mountpoint).catch(() => undefined);
    s = now?.switch ?? s;
    const answered = s && s.requests >= asked && s.state !== 'checking' && s.state !== 'idle';
    if (answered || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`);
  if (!s || s.requests < asked || s.state === 'checking')
    throw new IncompleteError(
      `${mountpoint}: the daemon (pid ${before.pid}) gave no answer within the wait; see its log`,
    );
  const changes = Object.entries(s.to).filter(([n, d]) => s.from[n] !== d && (name === undefined || n === name));
  switch (s.state) {
    case 'up-to-date':
      if (!o.json) process.stdout.write(`httpstorged: ${mountpoint} serves the latest version of every image\n`);
      return EXIT.OK;
    case 'switched':
      if (!o.json)
        for (const [n, d] of changes) process.stdout.write(`httpstorged: switched ${n} from ${s.from[n]} to ${d}\n`);
      return EXIT.OK;
    case 'waiting':
      throw new BusyError(
        `${mountpoint} is in use: a newer version of ${changes.map(([n]) => n).join(', ')} is published, and the daemon switches to it once nothing uses the mount`,
      );
    default:
      throw new MirrorUnavailableError(mountpoint, `switch failed: ${s.message ?? 'see the daemon log'}`);
  }
}

/**
 * The command table. The first word picks a subcommand; anything else is a
 * mount (`httpstorged MOUNTPOINT INDEX-URL…`, or `httpstorged mount …`): the
 * hidden default command, whose help is the program's. The subcommands are
 * hidden from that help: its usage lines name them. `argv`: the user's
 * arguments, which a daemon is started again with; `exit`: a command's exit code.
 */
function commandTable(argv: readonly string[], exit: (code: number) => void): Command {
  // Settings given here pass to each command as it is added.
  const root = new Command('httpstorged').helpCommand(false).exitOverride();
  mountCommand(root, argv, exit);
  nbdCommand(root, argv, exit);
  mountControlCommands(root, exit);
  statusCommands(root, exit);
  cacheCommands(root, exit);
  // Only now, or the commands would copy it: `--help` and `-V` are the mount's, as the program's help is.
  root.helpOption(false);
  // A parse error points to the help of the command it is in; the mount's is the program's.
  return oneLineParseErrors(root, 'httpstorged', (cmd, path) => (cmd.name() === 'mount' ? 'httpstorged' : path));
}

/** The subcommands are hidden from the program's help (the mount's): its usage lines name them. */
const HIDDEN = { hidden: true };

/** The mount, the hidden default command: `httpstorged MOUNTPOINT INDEX-URL…` or `httpstorged mount …`. */
function mountCommand(root: Command, argv: readonly string[], exit: (code: number) => void): void {
  sourceOptions(
    root
      .command('mount', { ...HIDDEN, isDefault: true })
      .description('Mount thfc images over HTTP as read-only disk files: MOUNTPOINT/NAME for each index.')
      .version('0.1.0')
      .usage(
        '[options] MOUNTPOINT INDEX-URL…\n       httpstorged nbd [options] INDEX-URL…\n       httpstorged umount MOUNTPOINT\n       httpstorged stats MOUNTPOINT|SOCKET [--json]\n       httpstorged measurements MOUNTPOINT|SOCKET\n       httpstorged fsck CACHE [--json]\n       httpstorged switch MOUNTPOINT [NAME] [--wait SECONDS]\n       httpstorged list [--json]\n       httpstorged cache [prune --to SIZE] CACHE [--json]',
      )
      // The program's usage: `httpstorged MOUNTPOINT …`, without the word `mount`.
      .configureHelp({ commandUsage: (cmd) => `httpstorged ${cmd.usage()}` })
      .argument('<mountpoint>', 'an existing empty directory')
      .argument('<index-urls...>', 'http(s)://…/NAME.idx, file://…/NAME.idx or a path; with --pool also NAME')
      .option('-f, --foreground', 'stay in the foreground (default: return once mounted, daemon in the background)'),
  )
    .option('--allow-other', 'let other users read the mount')
    .option(
      '--auto-switch',
      'when a version check finds a newer version, move to it once nothing uses the images (see httpstorged switch)',
    )
    .action(async (mountpoint: string, indexes: string[], o: OptionValues) =>
      exit(await runMount(mountpoint, indexes, o, argv[0] === 'mount' ? argv.slice(1) : [...argv])),
    );
}

/** `httpstorged nbd`: the same images and options as a mount, served to NBD clients instead. */
function nbdCommand(root: Command, argv: readonly string[], exit: (code: number) => void): void {
  sourceOptions(
    root
      .command('nbd', HIDDEN)
      .description('Serve thfc images over HTTP as read-only NBD exports, each named by its image name.')
      .usage('[options] (--socket PATH | --listen HOST:PORT) INDEX-URL…')
      .argument('<index-urls...>', 'http(s)://…/NAME.idx, file://…/NAME.idx or a path; with --pool also NAME')
      .option('-f, --foreground', 'stay in the foreground (default: return once serving, daemon in the background)')
      .option('--socket <path>', 'listen on this Unix socket (mode 0600; 0660 with --group)')
      .option('--group <group>', 'let this group (name or number) use the socket too')
      .option('--listen <host:port>', 'listen on TCP instead (no authentication or encryption: trusted networks only)')
      .option(
        '--replace',
        'take the socket over from the daemon serving on it, which then finishes its requests and exits',
      )
      .option('--max-clients <n>', 'most NBD connections at once (default 64)', count('--max-clients', 1)),
  ).action(async (indexes: string[], o: OptionValues) => exit(await runNbd(indexes, o, argv.slice(1))));
}

/** What acts on a running mount: `umount` and `switch`. */
function mountControlCommands(root: Command, exit: (code: number) => void): void {
  root
    .command('umount', HIDDEN)
    .argument('<mountpoint>')
    .option('-l, --lazy', 'detach even if the image is in use; the daemon serves its last users, then exits')
    .action(async (mountpoint: string, o: { lazy?: boolean }) => exit(await runUmount(mountpoint, !!o.lazy)));

  root
    .command('switch', HIDDEN)
    .argument('<mountpoint>')
    .argument('[name]', 'an image of the mount (all of its images switch together)')
    .option('--wait <seconds>', `how long to wait for the daemon's answer (default ${DEFAULT_SWITCH_WAIT_S})`, (v) =>
      seconds('--wait')(v),
    )
    .option('--json', 'print the switch status as JSON')
    .action(async (mountpoint: string, name: string | undefined, o: { wait?: number; json?: boolean }) =>
      exit(await runSwitch(mountpoint, name, o)),
    );
}

/** What reads a mount's or a daemon's state: `stats`, `list` and `measurements`. */
function statusCommands(root: Command, exit: (code: number) => void): void {
  root
    .command('stats', HIDDEN)
    .argument(
      '[mountpoint-or-socket]',
      'a mountpoint, or the socket (or HOST:PORT) of `httpstorged nbd`; none: every mount, as `list`',
    )
    .option('--json', 'print the raw stats.json')
    .action(async (target: string | undefined, o: { json?: boolean }) => exit(await runStats(target, !!o.json)));

  root
    .command('list', HIDDEN)
    .description('show every httpstorged mount of this machine: images, daemon pid, cache and its usage')
    .option('--json', 'print one JSON array of the mounts')
    .action(async (o: { json?: boolean }) => exit(await printMountList(!!o.json)));

  root
    .command('measurements', HIDDEN)
    .argument('<mountpoint-or-socket>')
    .action(async (target: string) => exit(await runMeasurements(target)));
}

/** What reads or repairs a cache directory: `cache`, `cache prune` and `fsck`. */
function cacheCommands(root: Command, exit: (code: number) => void): void {
  // `httpstorged cache CACHE`: usage and per-image coverage; `httpstorged cache prune CACHE --to SIZE` trims it.
  const cache = root
    .command('cache', HIDDEN)
    .description('report the blocks and bytes of a cache, and how much of each image it has cached')
    .usage('[--json] CACHE\n       httpstorged cache prune CACHE --to SIZE [--json]')
    .argument('<cache>', `the cache directory (default of the daemon: ${DEFAULT_CACHE_DIR})`)
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, o: { json?: boolean }) => exit(await runCache(dir, !!o.json)));
  cache
    .command('prune', HIDDEN)
    .description('remove least recently used blocks until the cache fits SIZE (refused while a daemon uses it)')
    .argument('<cache>', 'the cache directory')
    .requiredOption(
      '--to <size>',
      'keep at most this many bytes of blocks (e.g. 2G), least recently used go first',
      size('--to'),
    )
    .option('--json', 'print the summary as JSON')
    // `cache --json prune …`: the --json before the word prune is the cache command's; it asks the same.
    .action(async (dir: string, o: { to: number; json?: boolean }) =>
      exit(await runCachePrune(dir, { to: o.to, json: o.json || !!cache.opts().json })),
    );

  root
    .command('fsck', HIDDEN)
    .argument('<cache>', `the cache directory (default of the daemon: ${DEFAULT_CACHE_DIR})`)
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, o: { json?: boolean }) => exit(await runFsckCommand(dir, !!o.json)));
}

const argv = process.argv.slice(2);
ignoreClosedOutput();
// Until a command installs its own handlers (a mount once mounted, nbd, fsck), a signal stops it at once, in one
// line: nothing it has started yet needs undoing. One held by the bin entry while this file loaded acts now.
const interruptedNow = (sig: NodeJS.Signals) => {
  if (process.listenerCount(sig) > 1) return;
  process.stderr.write(`httpstorged: interrupted by ${sig}\n`);
  process.exit(EXIT.INTERRUPTED);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, interruptedNow);
for (const sig of releaseHeldSignals()) interruptedNow(sig);
try {
  await commandTable(argv, (code) => {
    process.exitCode = code;
  }).parseAsync(argv, { from: 'user' });
} catch (e) {
  process.exitCode = reportError('httpstorged', e);
  // A daemon that failed before its command ran (a parse error, a bad --socket): the command started straight
  // from the bin entry (nbdFastStart) waits on --ready-fd, and tells the user.
  const readyFd = readyFdOf(argv);
  if (readyFd !== undefined) report(readyFd, { ok: false, code: process.exitCode, message: startFailure(e) });
}
