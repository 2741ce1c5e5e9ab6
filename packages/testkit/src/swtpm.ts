import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The only importer of swtpm (Debian `swtpm`): a software TPM 2.0 for tests,
 * on loopback TCP, with a fresh state directory, started up (TPM2_Startup
 * done) so tpm2-tools can use it at once through `tcti`. Always stop() it.
 */
export class Swtpm {
  private constructor(
    private readonly child: ChildProcess,
    private readonly stateDir: string,
    readonly port: number,
  ) {}

  /** The TCTI string for tpm2-tools' -T / $TPM2TOOLS_TCTI. */
  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  /** Starts swtpm on a free port pair (P for commands, P+1 for control), retrying a few ports on a race. */
  static async start(options: { readyTimeoutMs?: number } = {}): Promise<Swtpm> {
    const stateDir = await mkdtemp(join(tmpdir(), 'thfc-swtpm-'));
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePortPair();
      const child = spawn(
        'swtpm',
        [
          'socket',
          '--tpm2',
          '--tpmstate',
          `dir=${stateDir}`,
          '--server',
          `type=tcp,port=${port},bindaddr=127.0.0.1`,
          '--ctrl',
          `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
          '--flags',
          'not-need-init,startup-clear',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (c) => {
        stderr += c;
      });
      const exited = new Promise<string>((resolve) => {
        child.on('error', (e) => resolve(e.message));
        child.on('exit', (code) => resolve(`swtpm exited with ${code}: ${stderr.trim()}`));
      });
      const ready = await Promise.race([waitForPort(port, options.readyTimeoutMs ?? 5000), exited]);
      if (ready === true) return new Swtpm(child, stateDir, port);
      lastError = ready;
      child.kill('SIGKILL');
      if (/ENOENT/.test(String(ready))) break;
    }
    await rm(stateDir, { recursive: true, force: true });
    throw new Error(`cannot start swtpm (Debian: apt install swtpm swtpm-tools): ${lastError}`);
  }

  /** SIGTERM, then SIGKILL after 3 s; removes the state. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    }
    await rm(this.stateDir, { recursive: true, force: true });
  }
}

async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await listenOnce(0);
    if (port < 65535 && (await listenOnce(port + 1).catch(() => 0))) return port;
  }
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<true | string> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return `swtpm did not listen on port ${port} within ${timeoutMs} ms`;
}
