import { join } from 'node:path';
import { freePort, redisCli, redisGroup, spawnRedis, stopRedis } from './redis-server.js';

/**
 * A real Redis Cluster for a test: `masters` redis-server processes on
 * loopback, each with `replicasPerMaster` replicas, joined by
 * `redis-cli --cluster create`. No persistence; the cluster's node files live
 * in a temp directory removed by stop(). A node's bus port is picked free
 * too (`--cluster-port`), as port + 10000 may be past 65535 or taken.
 */
export interface TestRedisCluster {
  /** Every node's client port, masters first as created. */
  readonly ports: readonly number[];
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…` over every node. */
  readonly url: string;
  /**
   * Kills (SIGKILL) the master that holds `key`'s slot and waits until one
   * of its replicas has taken the slot over and the cluster is whole again.
   */
  failover(key: string): Promise<{ killed: number; promoted: number }>;
  stop(): Promise<void>;
}

/** A failed master is noticed after 1 s here (Redis's default is 15 s), so a failover takes a few seconds. */
const NODE_TIMEOUT_MS = 1_000;
/** Joining, and a failover, each finish within this. */
const SETTLE_TIMEOUT_MS = 30_000;

export async function startRedisCluster(masters = 3, replicasPerMaster = 1): Promise<TestRedisCluster> {
  const { dir, nodes, stop } = await redisGroup('thfc-redis-cluster-');
  try {
    const count = masters * (1 + replicasPerMaster);
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const bus = await freePort();
      ports.push(port);
      const child = await spawnRedis(port, [
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(bus),
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        String(NODE_TIMEOUT_MS),
        '--dir',
        dir,
        // A replica's first sync starts at once instead of waiting 5 s for more replicas to share it.
        '--repl-diskless-sync-delay',
        '0',
      ]);
      nodes.set(port, child);
    }
    await redisCli(
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`)].concat([
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ]),
    );
    const live = () => [...nodes.keys()];
    await settle(live, masters, replicasPerMaster);
    return {
      ports,
      url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      async failover(key: string) {
        const any = live()[0] as number;
        const slot = Number((await redisCli(['-p', String(any), 'CLUSTER', 'KEYSLOT', key])).trim());
        const owner = masterOf(await clusterNodes(any), slot);
        if (owner === undefined) throw new Error(`no master holds slot ${slot}`);
        const child = nodes.get(owner);
        if (!child) throw new Error(`the master of slot ${slot} (port ${owner}) is not one of ours`);
        nodes.delete(owner);
        await stopRedis(child, 'SIGKILL');
        const deadline = Date.now() + SETTLE_TIMEOUT_MS;
        for (;;) {
          const promoted = masterOf(await clusterNodes(live()[0] as number).catch(() => ''), slot);
          if (promoted !== undefined && promoted !== owner) {
            await settle(live, masters, 0);
            return { killed: owner, promoted };
          }
          if (Date.now() > deadline)
            throw new Error(`no replica took over slot ${slot} within ${SETTLE_TIMEOUT_MS} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Waits until every live node says the cluster is ok, with `masters` masters and their replicas in sync. */
async function settle(live: () => number[], masters: number, replicasPerMaster: number): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let last = '';
  for (;;) {
    let ok = true;
    for (const port of live()) {
      const info = await redisCli(['-p', String(port), 'CLUSTER', 'INFO']).catch((e: Error) => e.message);
      const nodes = await clusterNodes(port).catch(() => '');
      const lines = nodes.split('\n').filter((l) => l.trim() && !/\b(fail|fail\?|handshake|noaddr)\b/.test(l));
      const liveMasters = lines.filter((l) => /\bmaster\b/.test(l) && l.trim().split(' ').length > 8);
      const replicas = lines.filter((l) => /\bslave\b/.test(l));
      const role = await redisCli(['-p', String(port), 'INFO', 'replication']).catch(() => '');
      if (
        !info.includes('cluster_state:ok') ||
        // A replica that has not finished its first sync could not take over.
        (role.includes('role:slave') && !role.includes('master_link_status:up')) ||
        liveMasters.length < masters ||
        replicas.length < masters * replicasPerMaster
      ) {
        ok = false;
        last = `port ${port}: ${info.split('\n')[0]}; ${liveMasters.length} masters, ${replicas.length} replicas`;
        break;
      }
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not settle within ${SETTLE_TIMEOUT_MS} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The port of the live master serving `slot`, from CLUSTER NODES text. */
function masterOf(nodes: string, slot: number): number | undefined {
  for (const line of nodes.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 9 || !/\bmaster\b/.test(f[2] as string) || /\bfail\b/.test(f[2] as string)) continue;
    for (const range of f.slice(8)) {
      const [a, b] = range.split('-').map(Number) as [number, number | undefined];
      if (slot >= a && slot <= (b ?? a)) return Number((f[1] as string).split('@')[0]?.split(':')[1]);
    }
  }
  return undefined;
}

function clusterNodes(port: number): Promise<string> {
  return redisCli(['-p', String(port), 'CLUSTER', 'NODES']);
}
