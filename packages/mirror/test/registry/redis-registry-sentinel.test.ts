import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisSentinel, type TestRedisSentinel } from '../../../../test/support/redis-sentinel.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { record, registryContract } from './registry-contract.js';

/**
 * The Redis registry through Sentinel (`redis+sentinel://…/mymaster`): a
 * real master, replica and Sentinel on loopback, started by this file.
 */
let sentinel: TestRedisSentinel;

beforeAll(async () => {
  sentinel = await startRedisSentinel();
}, 60_000);
afterAll(async () => {
  await sentinel?.stop();
});

registryContract(
  'RedisRegistry through Sentinel',
  async () => {
    const registry = await RedisRegistry.connect({}, { url: sentinel.url });
    for (const r of await registry.list()) await registry.unregister(r.id);
    return { registry, pass: (ms) => sleep(ms + 20) };
  },
  600,
);

describe('RedisRegistry through Sentinel', () => {
  it('follows the master through a failover: records written before it are listed, and writes carry on', async () => {
    const registry = await RedisRegistry.connect({}, { url: sentinel.url });
    try {
      for (const r of await registry.list()) await registry.unregister(r.id);
      await registry.register(record(), 60_000);
      await sentinel.synced();
      const { killed, promoted } = await sentinel.failover();
      expect(promoted).not.toBe(killed);
      let listed: unknown;
      for (let i = 0; i < 100 && listed === undefined; i++) {
        listed = await registry.list().catch(() => undefined);
        if (listed === undefined) await sleep(100);
      }
      expect(listed).toEqual([record()]);
      await registry.register(record({ id: 'b:1', url: 'http://b:1/' }), 60_000);
      expect((await registry.list()).map((r) => r.id).sort()).toEqual(['127.0.0.1:8080', 'b:1']);
      expect(await sentinel.masterPort()).toBe(promoted);
    } finally {
      await registry.close();
    }
  }, 60_000);
});
