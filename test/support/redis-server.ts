import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real redis-server for a test, on a free loopback port, with no
 * persistence. Redis cannot listen on port 0, so a free port is found by
 * binding one in node first. Always stop() it (it is also killed if the test
 * process exits).
 */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop()), as a restarted Redis. */
  restart(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined = await spawnRedis(port);
  const stop = async () => {
    const c = child;
    child = undefined;
    if (c) await stopRedis(c);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop();
      child = await spawnRedis(port);
    },
  };
}

/** SIGTERM (or `signal`), then SIGKILL after 5 s; resolves once it has exited. */
export async function stopRedis(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

/**
 * Several redis-server processes started by one test (a cluster, a Sentinel
 * set-up), with a temp directory for their files: stop() kills every one
 * still running and removes the directory.
 */
export interface RedisGroup {
  readonly dir: string;
  /** The running processes by port; remove one you stop yourself. */
  readonly nodes: Map<number, ChildProcess>;
  stop(): Promise<void>;
}

export async function redisGroup(prefix: string): Promise<RedisGroup> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const nodes = new Map<number, ChildProcess>();
  return {
    dir,
    nodes,
    async stop() {
      await Promise.all([...nodes.values()].map((c) => stopRedis(c, 'SIGKILL')));
      nodes.clear();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `redis-cli ARGS` (bounded: 30 s); its stdout, or an error with what it printed. */
export function redisCli(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')}: ${stderr || stdout || error.message}`));
      else resolve(stdout);
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, host, r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * One redis-server on 127.0.0.1:`port` with no persistence and `extra`
 * arguments, resolved once it answers PING (killed if it does not within
 * START_TIMEOUT_MS, and when the test process exits).
 */
export async function spawnRedis(
  port: number,
  extra: readonly string[] = [],
  /** A config file, read first (a Sentinel needs one it can rewrite). */
  configFile?: string,
): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      ...(configFile ? [configFile] : []),
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'warning',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  let output = '';
  child.stdout?.on('data', (c) => {
    output += c;
  });
  child.stderr?.on('data', (c) => {
    output += c;
  });
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (e) =>
      reject(new Error(`cannot run redis-server (${e.message}); install it: apt-get install redis-server`)),
    ),
  );
  const deadline = Date.now() + START_TIMEOUT_MS;
  // Ready when it accepts a PING; bounded by START_TIMEOUT_MS.
  while (Date.now() < deadline) {
    const ready = await Promise.race([ping(port), spawnError]);
    if (ready) return child;
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not start on port ${port} within ${START_TIMEOUT_MS} ms: ${output}`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    let reply = '';
    s.setTimeout(500, () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(false));
    s.on('data', (c: Buffer) => {
      reply += c;
      if (reply.includes('\r\n')) {
        s.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
  });
}
