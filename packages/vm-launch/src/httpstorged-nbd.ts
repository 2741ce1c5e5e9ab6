import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { EXIT, InterruptedError } from '@thfc/format';
import { MountFailedError } from './errors.js';
import {
  cannotRun,
  childExit,
  DEFAULT_MOUNT_TIMEOUT_MS,
  DEFAULT_UNMOUNT_TIMEOUT_MS,
  type HttpstorgedCommand,
  type ImageStats,
  imageStats,
  lastMessage,
  spawnLogged,
  within,
} from './httpstorged.js';
import { nbdDisk } from './via.js';

/**
 * Serves an index as an NBD export through `httpstorged nbd`, a child process
 * thfc-vm owns for the length of the run, as HttpstorgedMount does for a FUSE
 * mount (same reasons: httpstorged's own flags, its own process). No FUSE is
 * involved: qemu opens the export itself, on a Unix socket in the run
 * directory, and reconnects if the daemon restarts.
 *
 * The child reports readiness on a pipe (--ready-fd), so the boot waits for
 * exactly "serving" or the daemon's own error, not for a file to appear.
 */
export class HttpstorgedNbd {
  private constructor(
    private readonly command: HttpstorgedCommand,
    private readonly child: ChildProcess,
    private readonly exited: Promise<number | null>,
    readonly socket: string,
    /** The export as qemu names a disk (see nbdDisk). */
    readonly disk: string,
    readonly logFile: string,
  ) {}

  /** `httpstorged nbd -f --socket SOCKET INDEX ARGS…`; resolves once the export is served. */
  static async start(
    command: HttpstorgedCommand,
    o: {
      socket: string;
      index: string;
      args: readonly string[];
      logFile: string;
      signal: AbortSignal;
      timeoutMs?: number;
    },
  ): Promise<HttpstorgedNbd> {
    o.signal.throwIfAborted();
    const child = await spawnLogged(
      command,
      [...command.prefix, 'nbd', '-f', '--ready-fd', '3', '--socket', o.socket, o.index, ...o.args],
      o.logFile,
      ['pipe'],
    );
    const exited = childExit(child);
    const served = new HttpstorgedNbd(command, child, exited, o.socket, nbdDisk(o.socket), o.logFile);
    const timeoutMs = o.timeoutMs ?? DEFAULT_MOUNT_TIMEOUT_MS;
    const ready = await readiness(child, o.signal, timeoutMs);
    if (ready.kind === 'ok') return served;
    await served.stop();
    if (ready.kind === 'spawn-error') throw cannotRun(command, ready.error);
    if (ready.kind === 'aborted') throw new InterruptedError('interrupted while starting httpstorged nbd');
    if (ready.kind === 'timeout')
      throw new MountFailedError(
        `httpstorged nbd did not serve ${o.index} within ${Math.round(timeoutMs / 1000)} s; see ${o.logFile}`,
        EXIT.IO,
      );
    const why = ready.message ?? (await lastMessage(o.logFile));
    throw new MountFailedError(
      `cannot serve ${o.index}: ${why ?? `httpstorged exited with status ${ready.code}`}`,
      ready.code ?? EXIT.IO,
    );
  }

  /** httpstorged's last one-line message in its log (why it failed, when it did). */
  lastMessage(): Promise<string | undefined> {
    return lastMessage(this.logFile);
  }

  /** The image's counters, or undefined if httpstorged cannot say (it died). */
  stats(signal: AbortSignal): Promise<ImageStats | undefined> {
    return imageStats(this.command, this.socket, signal);
  }

  /** Stops the daemon (SIGTERM: it answers what is in flight, then exits), bounded. Resolves true when clean. */
  async stop(timeoutMs = DEFAULT_UNMOUNT_TIMEOUT_MS): Promise<boolean> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return true;
    this.child.kill('SIGTERM');
    if (await within(this.exited, timeoutMs)) return true;
    this.child.kill('SIGKILL');
    await within(this.exited, 5_000);
    return false;
  }
}

type Readiness =
  | { kind: 'ok' }
  | { kind: 'failed'; code: number | null; message?: string | undefined }
  | { kind: 'spawn-error'; error: NodeJS.ErrnoException }
  | { kind: 'aborted' }
  | { kind: 'timeout' };

/** What the child says on its ready pipe (one JSON line), or why it never did. */
function readiness(child: ChildProcess, signal: AbortSignal, timeoutMs: number): Promise<Readiness> {
  return new Promise((resolve) => {
    const pipe = child.stdio[3] as Readable;
    let text = '';
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    const onAbort = () => done({ kind: 'aborted' });
    signal.addEventListener('abort', onAbort, { once: true });
    function done(r: Readiness) {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      pipe.destroy();
      resolve(r);
    }
    pipe.on('data', (c) => {
      text += c;
    });
    pipe.on('error', () => {});
    pipe.on('end', () => {
      try {
        const msg = JSON.parse(text) as { ok: boolean; code?: number; message?: string };
        done(msg.ok ? { kind: 'ok' } : { kind: 'failed', code: msg.code ?? null, message: msg.message });
      } catch {
        child.once('exit', (code) => done({ kind: 'failed', code }));
        if (child.exitCode !== null) done({ kind: 'failed', code: child.exitCode });
      }
    });
    child.on('error', (error) => done({ kind: 'spawn-error', error }));
  });
}
