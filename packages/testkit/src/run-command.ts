import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Killed (SIGKILL) after this long; the result then has `signal` set. Unbounded when absent. */
  readonly timeoutMs?: number | undefined;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
  /** Written to the child's stdin, which is then closed (closed at once when absent). */
  readonly input?: Uint8Array | string | undefined;
  /** Run as this uid (and the gid of the same number); needs root. */
  readonly uid?: number | undefined;
}

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to the close of its output. */
  readonly ms: number;
}

/**
 * Runs a command to completion in a child process, as a user would, and
 * gives back its status and output. Never throws on a non-zero exit; rejects
 * only when the command cannot be started.
 */
export function runCommand(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    // A child that exits without reading its input must not fail the run with EPIPE.
    child.stdin.on('error', () => {});
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.end(options.input);
  });
}
