import { type ChildProcess, spawn } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
// A type only (erased): the package's main entry loads FUSE, which thfc-vm never needs itself.
import type { ImageStatus } from '@thfc/blockfs';
import { EXIT, InterruptedError, StoreIoError } from '@thfc/format';
import { isMounted, lazyUnmount } from '@thfc/store';
import { EngineMissingError, MountFailedError } from './errors.js';

/**
 * Mounts an index through the httpstorged CLI, as a child process that
 * thfc-vm owns for the length of the run.
 *
 * Why the CLI and not the blockfs API in-process: the mount options are
 * httpstorged's own flags, passed through unchanged (one parser, one set of
 * docs); libfuse installs its own SIGINT/SIGTERM handlers in the process that
 * mounts, which would fight thfc-vm's Ctrl-C handling; and FUSE requests, block
 * fetches and decompression stay off the process that relays the guest's
 * console. The cost is one Node start-up (~0.3 s) per boot.
 *
 * The child runs in the foreground (-f) in its own process group, so a Ctrl-C
 * on the terminal reaches qemu and thfc-vm but not the mount: thfc-vm stops
 * qemu first and unmounts last.
 */

/** How to run httpstorged: a program and the arguments before httpstorged's own. */
export interface HttpstorgedCommand {
  readonly program: string;
  readonly prefix: readonly string[];
}

/** The httpstorged of the @thfc/blockfs this package depends on, run by `node` (the running one). */
export function bundledHttpstorged(node: string): HttpstorgedCommand {
  let cli: string;
  try {
    cli = fileURLToPath(new URL('./cli.js', import.meta.resolve('@thfc/blockfs')));
  } catch {
    throw new EngineMissingError('httpstorged', 'the @thfc/blockfs package is not installed beside @thfc/vm-launch');
  }
  return { program: node, prefix: [cli] };
}

/** Loading an index is one HTTP request with httpstorged's own timeouts and retries; a minute means it is stuck. */
export const DEFAULT_MOUNT_TIMEOUT_MS = 60_000;
/** httpstorged unmounts on SIGTERM in well under a second once qemu has closed the file. */
export const DEFAULT_UNMOUNT_TIMEOUT_MS = 20_000;
/** How often to look for the mount to appear: short against a ~0.5 s mount. */
const POLL_MS = 20;

/** httpstorged's per-image counters (`httpstorged stats --json`), the ones a boot report quotes. */
export interface ImageStats {
  readonly name: string;
  readonly size: number;
  readonly blocks: number;
  readonly zeroBlocks: number;
  readonly uniqueBlocks: number;
  readonly blocksFetched: number;
  readonly bytesDownloaded: number;
  readonly cacheHits: number;
  readonly reads: number;
  readonly bytesRead: number;
  readonly readErrors: number;
  readonly readaheadIssued?: number;
  /** Boot-profile replay (null: no profile replayed). */
  readonly prefetch?: ImageStatus['prefetch'];
  /** --fill progress (null: no fill). */
  readonly fill?: ImageStatus['fill'];
}

interface StartOptions {
  readonly mountpoint: string;
  readonly index: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly signal: AbortSignal;
  readonly timeoutMs?: number;
}

export class HttpstorgedMount {
  private constructor(
    private readonly command: HttpstorgedCommand,
    private readonly child: ChildProcess,
    private readonly exited: Promise<number | null>,
    readonly mountpoint: string,
    /** MOUNTPOINT/NAME: the raw disk file. */
    readonly disk: string,
    readonly logFile: string,
  ) {}

  /** `httpstorged -f MOUNTPOINT INDEX ARGS…`; resolves once the mount is there and shows its one image. */
  static async start(command: HttpstorgedCommand, o: StartOptions): Promise<HttpstorgedMount> {
    o.signal.throwIfAborted();
    const child = await spawnLogged(command, [...command.prefix, '-f', o.mountpoint, o.index, ...o.args], o.logFile);
    const watch = watchChild(child);
    const mount = new HttpstorgedMount(command, child, watch.exited, o.mountpoint, '', o.logFile);
    await mount.untilMounted(o, watch);
    const names = (await readdir(o.mountpoint)).filter((n) => !n.startsWith('.'));
    if (names.length !== 1) {
      await mount.stop();
      throw new MountFailedError(`expected one image at ${o.mountpoint}, found ${names.length}`, EXIT.SOFTWARE);
    }
    return new HttpstorgedMount(
      command,
      child,
      watch.exited,
      o.mountpoint,
      join(o.mountpoint, names[0] as string),
      o.logFile,
    );
  }

  /**
   * Polls until the mount is there. Throws if the daemon could not run or exited (with its last message), and
   * stops it first on abort or after the timeout.
   */
  private async untilMounted(o: StartOptions, watch: ChildWatch): Promise<void> {
    const deadline = Date.now() + (o.timeoutMs ?? DEFAULT_MOUNT_TIMEOUT_MS);
    for (;;) {
      const { spawnError, exitCode } = watch;
      if (spawnError) throw cannotRun(this.command, spawnError);
      if (exitCode !== undefined) {
        const why = await lastMessage(o.logFile);
        throw new MountFailedError(
          `cannot mount ${o.index}: ${why ?? `httpstorged exited with status ${exitCode}`}`,
          exitCode ?? EXIT.IO,
        );
      }
      if (await isMounted(o.mountpoint)) return;
      if (o.signal.aborted) {
        await this.stop();
        throw new InterruptedError('interrupted while mounting');
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new MountFailedError(
          `httpstorged did not mount ${o.index} within ${Math.round((o.timeoutMs ?? DEFAULT_MOUNT_TIMEOUT_MS) / 1000)} s; see ${o.logFile}`,
          EXIT.IO,
        );
      }
      await sleep(POLL_MS);
    }
  }

  /** httpstorged's last one-line message in its log (why it failed, when it did). */
  lastMessage(): Promise<string | undefined> {
    return lastMessage(this.logFile);
  }

  /** The image's counters, or undefined if httpstorged cannot say (it died). */
  stats(signal: AbortSignal): Promise<ImageStats | undefined> {
    return imageStats(this.command, this.mountpoint, signal);
  }

  /**
   * Stops the daemon (it unmounts on SIGTERM), bounded; a daemon that does not
   * go is killed and its mount detached. Resolves true when it went cleanly.
   */
  async stop(timeoutMs = DEFAULT_UNMOUNT_TIMEOUT_MS): Promise<boolean> {
    let clean = true;
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      if (!(await within(this.exited, timeoutMs))) {
        clean = false;
        this.child.kill('SIGKILL');
        await within(this.exited, 5_000);
      }
    }
    if (await isMounted(this.mountpoint)) {
      clean = false;
      await lazyUnmount(this.mountpoint).catch(() => {});
    }
    return clean;
  }
}

/**
 * Spawns `command.program ARGS` detached (its own process group), its output appended to `logFile`; `extra`
 * stdio entries follow stdout and stderr (fd 3 on: httpstorged nbd's --ready-fd pipe).
 */
export async function spawnLogged(
  command: HttpstorgedCommand,
  args: readonly string[],
  logFile: string,
  extra: readonly 'pipe'[] = [],
): Promise<ChildProcess> {
  const log = await open(logFile, 'a');
  try {
    return spawn(command.program, args, { detached: true, stdio: ['ignore', log.fd, log.fd, ...extra] });
  } finally {
    await log.close();
  }
}

/** The child's exit code once it ends (null: killed by a signal, or it could not be spawned). */
export function childExit(child: ChildProcess): Promise<number | null> {
  return new Promise<number | null>((res) => {
    child.on('exit', (code) => res(code));
    child.on('error', () => res(null));
  });
}

/** Why httpstorged could not be run: not installed (EngineMissingError), or another spawn error. */
export function cannotRun(command: HttpstorgedCommand, error: NodeJS.ErrnoException): Error {
  return error.code === 'ENOENT'
    ? new EngineMissingError(command.program, 'cannot run httpstorged')
    : new StoreIoError(`cannot run httpstorged: ${error.message}`);
}

/** What became of a child so far: a spawn error, an exit code (null: killed by a signal), and its exit to await. */
interface ChildWatch {
  readonly exited: Promise<number | null>;
  spawnError: NodeJS.ErrnoException | undefined;
  exitCode: number | null | undefined;
}

function watchChild(child: ChildProcess): ChildWatch {
  const exited = childExit(child);
  const watch: ChildWatch = { exited, spawnError: undefined, exitCode: undefined };
  child.on('error', (e) => {
    watch.spawnError = e;
  });
  void exited.then((c) => {
    watch.exitCode = c;
  });
  return watch;
}

/** `httpstorged stats TARGET --json`'s first image (TARGET: a mountpoint or an NBD socket); undefined if it cannot say. */
export async function imageStats(
  command: HttpstorgedCommand,
  target: string,
  signal: AbortSignal,
): Promise<ImageStats | undefined> {
  const out = await new Promise<string | undefined>((resolve) => {
    const c = spawn(command.program, [...command.prefix, 'stats', target, '--json'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      signal,
      timeout: 10_000,
    });
    let text = '';
    c.stdout.on('data', (d) => {
      text += d;
    });
    c.on('error', () => resolve(undefined));
    c.on('close', (code) => resolve(code === 0 ? text : undefined));
  });
  if (!out) return undefined;
  try {
    return (JSON.parse(out) as { images: ImageStats[] }).images[0];
  } catch {
    return undefined;
  }
}

/** Resolves true when `p` settles within `ms`, false otherwise; leaves no timer behind. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const timedOut = sleep(ms, false, { signal: ac.signal }).catch(() => false);
  try {
    return await Promise.race([p.then(() => true), timedOut]);
  } finally {
    ac.abort();
  }
}

/** httpstorged's last "httpstorged: …" line (its one-line error), else the last line of its log. */
export async function lastMessage(logFile: string): Promise<string | undefined> {
  const lines = (await readFile(logFile, 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const own = lines.filter((l) => l.startsWith('httpstorged: ')).pop();
  return (own ?? lines.pop())?.replace(/^httpstorged: /, '');
}
