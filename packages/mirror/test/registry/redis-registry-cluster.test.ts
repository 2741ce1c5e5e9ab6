import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../../../../test/support/redis-cluster.js';
import { runDns } from '../../src/dns/run-dns.js';
import { REDIS_KEY_PREFIX, RedisRegistry } from '../../src/registry/redis-registry.js';
import { dig } from '../dns/dig.js';
import { packImage, tempDir, testIo, testMirror } from '../helpers.js';
import { record, registryContract } from './registry-contract.js';

/**
 * The Redis registry against a real Redis Cluster: three masters with one
 * replica each, redis-server processes on loopback started by this file.
 * Every key carries the `{thfc}` hash tag, so the registry's transactions and
 * its listing script, which touch several keys, run on one node.
 */
let cluster: TestRedisCluster;
let raw: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster(3, 1);
  raw = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
}, 60_000);
afterAll(async () => {
  raw?.disconnect();
  await cluster?.stop();
});

/** Removes the fleet's keys: a cluster has no databases to give each case its own. */
async function clear(): Promise<void> {
  const ids = await raw.smembers(`${REDIS_KEY_PREFIX}mirrors`);
  await raw.del(`${REDIS_KEY_PREFIX}mirrors`, ...ids.map((id) => `${REDIS_KEY_PREFIX}mirror:${id}`));
}

registryContract(
  'RedisRegistry on a Redis Cluster',
  async () => {
    await clear();
    return { registry: await RedisRegistry.connect({}, { url: cluster.url }), pass: (ms) => sleep(ms + 20) };
  },
  600,
);

describe('RedisRegistry on a Redis Cluster', () => {
  it('keeps every key in the one slot of {thfc}, and --redis-cluster with a redis:// seed reads the same fleet', async () => {
    await clear();
    const registry = await RedisRegistry.connect({}, { url: cluster.url });
    const seeded = await RedisRegistry.connect({}, { url: `redis://127.0.0.1:${cluster.ports[1]}`, cluster: true });
    try {
      await registry.register(record(), 60_000);
      const slots = await Promise.all(
        [`${REDIS_KEY_PREFIX}mirrors`, `${REDIS_KEY_PREFIX}mirror:127.0.0.1:8080`, '{thfc}'].map(
          (k) => raw.call('CLUSTER', 'KEYSLOT', k) as Promise<number>,
        ),
      );
      expect(new Set(slots).size).toBe(1);
      expect(await seeded.list()).toEqual([record()]);
      expect(String(seeded)).toContain('redis://127.0.0.1');
    } finally {
      await registry.close();
      await seeded.close();
    }
  });

  // Last: it kills a master.
  it('serve heartbeats and dns answers through a master failover: the replica takes over and both carry on', async () => {
    await clear();
    const { dir, cleanup } = await tempDir();
    const store = `${dir}/store`;
    await packImage(dir, store, 'img', [['t', 64 * 1024]]);
    const dnsAbort = new AbortController();
    const dns = await runDns(
      { zone: 'pool.test', listen: '127.0.0.1:0', redis: cluster.url, refreshMs: 200 },
      { signal: dnsAbort.signal },
    );
    const opts = { store, redis: cluster.url, region: 'jp', heartbeatIntervalMs: 300 };
    const first = await testMirror(opts, testIo());
    let second: Awaited<ReturnType<typeof testMirror>> | undefined;
    const srvPorts = async () => {
      const out = await dig(dns.address, ['+short', '_thfc._tcp.pool.test', 'SRV']);
      if (out.code !== 0) throw new Error(`dig: ${out.stderr}${out.stdout}`);
      return out.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(l.split(' ')[2]))
        .sort();
    };
    const until = async (what: string, ok: () => Promise<boolean>) => {
      for (let i = 0; i < 150; i++) {
        if (await ok().catch(() => false)) return;
        await sleep(100);
      }
      throw new Error(`not within 15 s: ${what}`);
    };
    try {
      await until('the first mirror in DNS', async () => (await srvPorts()).includes(first.address.port));

      // dig asks all through the failover: the DNS server answers every time, from its last list while the
      // cluster cannot answer. (Answers may be empty for a moment after the promotion: with a 300 ms beat the
      // record's 0.9 s TTL runs out during the ~3 s failover, until the next heartbeat lands.)
      let digging = true;
      const failed: string[] = [];
      let asked = 0;
      const digLoop = (async () => {
        while (digging) {
          asked++;
          await srvPorts().catch((e: Error) => failed.push(e.message));
          await sleep(100);
        }
      })();
      const { killed, promoted } = await cluster.failover(`${REDIS_KEY_PREFIX}mirrors`);
      expect(promoted).not.toBe(killed);
      await until('the first mirror back in DNS, from the promoted replica', async () =>
        (await srvPorts()).includes(first.address.port),
      );
      digging = false;
      await digLoop;
      expect(failed).toEqual([]);
      expect(asked).toBeGreaterThan(5);

      // A mirror that starts after the failover registers, and DNS lists both.
      second = await testMirror(opts, testIo());
      const both = [first.address.port, second.address.port].sort();
      await until('both mirrors in DNS', async () => JSON.stringify(await srvPorts()) === JSON.stringify(both));
      // The first mirror's heartbeat is still landing: its record is fresh.
      const registry = await RedisRegistry.connect({}, { url: cluster.url });
      try {
        const fresh = async () => {
          const r = (await registry.list()).find((m) => m.url === first.url);
          return !!r && Date.now() - r.updated < 1_000;
        };
        await until('a fresh heartbeat from the first mirror', fresh);
      } finally {
        await registry.close();
      }
      // A clean shutdown unregisters: the mirror leaves DNS.
      await second.close();
      await until('the second mirror gone from DNS', async () => {
        const ports = await srvPorts();
        return ports.length === 1 && ports[0] === first.address.port;
      });
    } finally {
      await second?.close();
      await first.close();
      await dns.close();
      await cleanup();
    }
  }, 90_000);
});
