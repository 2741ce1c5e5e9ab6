import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * A long-running child process for a test (a mirror, a DNS server): its
 * output is kept for failure messages, and it is always stopped, politely
 * (SIGTERM) or as a crash (SIGKILL). Registered daemons are also killed if
 * the test process exits.
 */
export class Daemon {
  output = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<unknown>;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    env?: Record<string, string>,
  ) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout?.on('data', (c) => {
      this.output += c;
    });
    this.child.stderr?.on('data', (c) => {
      this.output += c;
    });
    this.exited = once(this.child, 'exit');
    const killOnExit = () => this.child.kill('SIGKILL');
    process.once('exit', killOnExit);
    this.child.once('exit', () => process.off('exit', killOnExit));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM and wait (SIGKILL after `graceMs`); SIGKILL at once with `crash`. */
  async stop(options: { crash?: boolean; graceMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    if (options.crash) this.child.kill('SIGKILL');
    else this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), options.graceMs ?? 5_000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Polls `ready` every 50 ms until it is true, the daemon dies, or `ms` pass (then throws with its output). */
export async function waitUntil(daemon: Daemon | undefined, what: string, ready: () => Promise<boolean>, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ready().catch(() => false)) return;
    if (daemon && !daemon.running) throw new Error(`${daemon.name} exited before ${what}:\n${daemon.output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${daemon ? `:\n${daemon.output}` : ''}`);
}
