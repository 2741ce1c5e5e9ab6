import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redisCli as cli, freePort, redisGroup, spawnRedis, stopRedis } from './redis-server.js';

/**
 * A real Sentinel setup for a test: a master, one replica and one Sentinel
 * watching them as `mymaster` (quorum 1), redis-server processes on
 * loopback, no persistence. The Sentinel's config file (which it rewrites)
 * lives in a temp directory removed by stop().
 */
export interface TestRedisSentinel {
  readonly master: string;
  /** `redis+sentinel://127.0.0.1:PORT/mymaster`. */
  readonly url: string;
  /** Port of the current master (as the Sentinel reports it). */
  masterPort(): Promise<number>;
  /** Waits until the replica has every write the master took (WAIT), so a failover loses nothing. */
  synced(): Promise<void>;
  /** Kills (SIGKILL) the master and waits until the Sentinel has promoted the replica. */
  failover(): Promise<{ killed: number; promoted: number }>;
  stop(): Promise<void>;
}

/** The Sentinel calls a master down after 1 s without an answer (its default is 30 s). */
const DOWN_AFTER_MS = 1_000;
const SETTLE_TIMEOUT_MS = 30_000;
const MASTER = 'mymaster';

export async function startRedisSentinel(): Promise<TestRedisSentinel> {
  const { dir, nodes, stop } = await redisGroup('thfc-redis-sentinel-');
  try {
    const masterPort = await freePort();
    nodes.set(masterPort, await spawnRedis(masterPort, ['--repl-diskless-sync-delay', '0']));
    const replicaPort = await freePort();
    nodes.set(
      replicaPort,
      await spawnRedis(replicaPort, [
        '--replicaof',
        '127.0.0.1',
        String(masterPort),
        '--repl-diskless-sync-delay',
        '0',
      ]),
    );
    await until('the replica in sync', async () =>
      (await redisCli(replicaPort, ['INFO', 'replication'])).includes('master_link_status:up'),
    );
    const sentinelPort = await freePort();
    const config = join(dir, 'sentinel.conf');
    await writeFile(
      config,
      [
        `sentinel monitor ${MASTER} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${MASTER} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${MASTER} 10000`,
        '',
      ].join('\n'),
    );
    const sentinel = await spawnRedis(sentinelPort, ['--sentinel', '--dir', dir], config);
    nodes.set(sentinelPort, sentinel);
    const masterPortNow = async () =>
      Number((await redisCli(sentinelPort, ['SENTINEL', 'get-master-addr-by-name', MASTER])).trim().split('\n')[1]);
    // The Sentinel learns the replica from the master within a few seconds; a failover needs it.
    await until('the Sentinel to know the replica', async () =>
      (await redisCli(sentinelPort, ['SENTINEL', 'replicas', MASTER])).includes(String(replicaPort)),
    );
    return {
      master: MASTER,
      url: `redis+sentinel://127.0.0.1:${sentinelPort}/${MASTER}`,
      masterPort: masterPortNow,
      async synced() {
        const port = await masterPortNow();
        await redisCli(port, ['WAIT', '1', '5000']);
      },
      async failover() {
        const killed = await masterPortNow();
        const child = nodes.get(killed);
        if (!child) throw new Error(`the master (port ${killed}) is not one of ours`);
        nodes.delete(killed);
        await stopRedis(child, 'SIGKILL');
        await until('the Sentinel to promote the replica', async () => (await masterPortNow()) !== killed);
        const promoted = await masterPortNow();
        await until('the promoted replica to take writes', async () =>
          (await redisCli(promoted, ['INFO', 'replication'])).includes('role:master'),
        );
        return { killed, promoted };
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`not within ${SETTLE_TIMEOUT_MS} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function redisCli(port: number, args: readonly string[]): Promise<string> {
  return cli(['-p', String(port), ...args]);
}
