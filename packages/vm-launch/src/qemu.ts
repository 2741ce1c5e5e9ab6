import { type ChildProcess, spawn } from 'node:child_process';
import { StoreIoError } from '@thfc/format';
import { EngineMissingError } from './errors.js';
import { QEMU_IMG, QEMU_SYSTEM } from './qemu-args.js';

/**
 * The only file that spawns qemu-system-x86_64 and qemu-img. Argument vectors
 * come from qemu-args.ts; this file owns process lifetime: every run is
 * bounded, stops on abort (SIGTERM, then SIGKILL after a grace period) and
 * reports how it ended.
 */

/** The programs, injectable so tests can point at a wrapper; the defaults are found on PATH. */
export interface QemuTools {
  readonly system: string;
  readonly img: string;
}
export const DEFAULT_QEMU_TOOLS: QemuTools = { system: QEMU_SYSTEM, img: QEMU_IMG };

/** qemu flushes the qcow2 overlay and exits well under a second after SIGTERM; ten seconds covers a loaded machine. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** qemu-img create/info and --version take milliseconds; a minute means a hung file system (a dead FUSE mount). */
export const DEFAULT_TOOL_TIMEOUT_MS = 60_000;
/** After qemu exits, its last output arrives within milliseconds; this long at most is waited for it. */
const PIPE_DRAIN_MS = 500;
/** Enough to quote qemu's last words; a chatty guest on piped stdout is not buffered without bound. */
const MAX_CAPTURE_CHARS = 256 * 1024;

export type StdioMode = 'inherit' | 'pipe' | 'ignore';

export interface QemuRunOptions {
  readonly signal: AbortSignal;
  /** stdin/stdout: 'inherit' gives qemu this terminal for the serial console. stderr is always piped (and forwarded). */
  readonly stdin: StdioMode;
  readonly stdout: StdioMode;
  onStdout?(chunk: Buffer): void;
  onStderr?(chunk: Buffer): void;
  /** Checked after each output chunk; true stops qemu (used for "KVM internal error", after which qemu hangs). */
  stopWhen?(output: { stdout: string; stderr: string }): boolean;
  /** Stop qemu after this long (the KVM probe); none for a guest run. */
  readonly timeoutMs?: number | undefined;
  /** Stop qemu when this aborts, reported as a timeout (the boot timeout decides when). */
  readonly timeoutSignal?: AbortSignal | undefined;
  readonly stopGraceMs?: number | undefined;
}

export interface QemuExit {
  /** Exit status, or null when a signal ended it. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Why thfc-vm stopped it, if it did. */
  readonly stoppedBy: 'abort' | 'stop-when' | 'timeout' | undefined;
  /** Captured when piped (the tail, capped). */
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs qemu-system-x86_64 until it exits; never rejects for a non-zero exit (the caller decides what it means). */
export function runQemu(tools: QemuTools, args: readonly string[], o: QemuRunOptions): Promise<QemuExit> {
  return new Promise((resolve, reject) => {
    if (o.signal.aborted) {
      resolve({ code: null, signal: null, stoppedBy: 'abort', stdout: '', stderr: '' });
      return;
    }
    const child = spawn(tools.system, args, { stdio: [o.stdin, o.stdout, 'pipe'] });
    let stdout = '';
    let stderr = '';
    const stopper = gracefulStop(child, o.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    const check = () => {
      if (o.stopWhen?.({ stdout, stderr })) stopper.stop('stop-when');
    };
    child.stdout?.on('data', (c: Buffer) => {
      stdout = (stdout + c.toString('utf8')).slice(-MAX_CAPTURE_CHARS);
      o.onStdout?.(c);
      check();
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-MAX_CAPTURE_CHARS);
      o.onStderr?.(c);
      check();
    });
    const unwatch = stopOnAbortOrTimeout(o, stopper.stop);
    child.on('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      reject(
        e.code === 'ENOENT'
          ? new EngineMissingError(tools.system, 'install it (Debian: apt-get install qemu-system-x86)')
          : new StoreIoError(`cannot run ${tools.system}: ${e.message}`),
      );
    });
    const cleanup = () => {
      unwatch();
      stopper.clear();
    };
    // 'close' waits for the output pipes too; a grandchild that keeps them open must not hold the run.
    let settled = false;
    const settle = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve({ code, signal, stoppedBy: stopper.stoppedBy, stdout, stderr });
    };
    child.on('exit', (code, signal) => {
      setTimeout(() => settle(code, signal), PIPE_DRAIN_MS).unref();
    });
    child.on('close', (code, signal) => settle(code, signal));
  });
}

type StopReason = NonNullable<QemuExit['stoppedBy']>;

/** Stops a child once, for the first reason given: SIGTERM, then SIGKILL after `graceMs`; `clear()` drops the timer. */
function gracefulStop(
  child: ChildProcess,
  graceMs: number,
): { stop(why: StopReason): void; readonly stoppedBy: StopReason | undefined; clear(): void } {
  let stoppedBy: StopReason | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  return {
    stop(why) {
      if (stoppedBy || child.exitCode !== null || child.signalCode !== null) return;
      stoppedBy = why;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    },
    get stoppedBy() {
      return stoppedBy;
    },
    clear() {
      if (killTimer) clearTimeout(killTimer);
    },
  };
}

/** Calls `stop` on abort, after `timeoutMs`, or when `timeoutSignal` aborts; returns what undoes all three. */
function stopOnAbortOrTimeout(o: QemuRunOptions, stop: (why: StopReason) => void): () => void {
  const onAbort = () => stop('abort');
  o.signal.addEventListener('abort', onAbort, { once: true });
  const timeout = o.timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), o.timeoutMs);
  const onTimeout = () => stop('timeout');
  o.timeoutSignal?.addEventListener('abort', onTimeout, { once: true });
  return () => {
    o.signal.removeEventListener('abort', onAbort);
    o.timeoutSignal?.removeEventListener('abort', onTimeout);
    if (timeout) clearTimeout(timeout);
  };
}

/** Runs a short tool (qemu-img, --version) to completion; rejects with its stderr when it fails. */
function runTool(
  program: string,
  args: readonly string[],
  o: { signal: AbortSignal; timeoutMs?: number | undefined; missingHint: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    o.signal.throwIfAborted();
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    const kill = () => child.kill('SIGKILL');
    o.signal.addEventListener('abort', kill, { once: true });
    const timer = setTimeout(kill, o.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      o.signal.removeEventListener('abort', kill);
      reject(
        e.code === 'ENOENT'
          ? new EngineMissingError(program, o.missingHint)
          : new StoreIoError(`cannot run ${program}: ${e.message}`),
      );
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      o.signal.removeEventListener('abort', kill);
      if (code === 0) resolve(out);
      else if (o.signal.aborted) reject(o.signal.reason);
      else
        reject(
          new StoreIoError(
            `${program} ${args.join(' ')}: ${sig ? `killed by ${sig}` : `exit ${code}`}${err.trim() ? `: ${err.trim().split('\n').slice(-3).join(' / ')}` : ''}`,
          ),
        );
    });
  });
}

export function qemuImg(tools: QemuTools, args: readonly string[], signal: AbortSignal): Promise<string> {
  return runTool(tools.img, args, { signal, missingHint: 'install it (Debian: apt-get install qemu-utils)' });
}

/** "QEMU emulator version 7.2.22 (Debian …)": the first line of --version, part of the KVM probe's cache key. */
export async function qemuVersion(tools: QemuTools, signal: AbortSignal): Promise<string> {
  const out = await runTool(tools.system, ['--version'], {
    signal,
    missingHint: 'install it (Debian: apt-get install qemu-system-x86)',
  });
  return out.split('\n')[0]?.trim() ?? '';
}
