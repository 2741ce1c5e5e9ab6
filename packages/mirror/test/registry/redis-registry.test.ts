import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, MirrorUnavailableError } from '@thfc/format';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type TestRedis } from '../../../../test/support/redis-server.js';
import { REDIS_KEY_PREFIX, RedisRegistry } from '../../src/registry/redis-registry.js';
import { record, registryContract } from './registry-contract.js';

/** Against a real redis-server on loopback, started and stopped by this file. */
let redis: TestRedis;
let db = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Each case gets its own database (0–15), so cases do not see each other's keys. */
async function fresh(): Promise<{ registry: RedisRegistry; url: string; raw: Redis }> {
  const url = `${redis.url}/${db++ % 16}`;
  const raw = new Redis(url);
  await raw.flushdb();
  return { registry: await RedisRegistry.connect({}, { url }), url, raw };
}

registryContract(
  'RedisRegistry',
  async () => {
    const { registry, raw } = await fresh();
    return {
      registry,
      pass: (ms) => sleep(ms + 20),
      cleanup: async () => {
        await raw.quit();
      },
    };
  },
  // Real time: wide enough that a busy machine does not blur "expired" and "refreshed".
  600,
);

describe('RedisRegistry', () => {
  it('stores {thfc}:mirror:<id> with a PX TTL and the id in {thfc}:mirrors', async () => {
    const { registry, raw } = await fresh();
    try {
      await registry.register(record(), 5_000);
      const key = `${REDIS_KEY_PREFIX}mirror:127.0.0.1:8080`;
      expect(JSON.parse((await raw.get(key)) as string)).toEqual(record());
      const pttl = await raw.pttl(key);
      expect(pttl).toBeGreaterThan(4_000);
      expect(pttl).toBeLessThanOrEqual(5_000);
      expect(await raw.smembers(`${REDIS_KEY_PREFIX}mirrors`)).toEqual(['127.0.0.1:8080']);
    } finally {
      await registry.close();
      await raw.quit();
    }
  });

  it('an unchanged record is listed as the same object; a changed one is decoded afresh', async () => {
    const { registry, raw } = await fresh();
    try {
      await registry.register(record(), 60_000);
      await registry.register(record({ id: 'b:1', url: 'http://b:1/' }), 60_000);
      const first = await registry.list();
      await registry.register(record({ id: 'b:1', url: 'http://b:1/', load: 7 }), 60_000);
      const second = await registry.list();
      const byId = (rs: readonly { id: string }[], id: string) => rs.find((r) => r.id === id);
      expect(byId(second, '127.0.0.1:8080')).toBe(byId(first, '127.0.0.1:8080'));
      expect(byId(second, 'b:1')).not.toBe(byId(first, 'b:1'));
      expect(byId(second, 'b:1')).toEqual(record({ id: 'b:1', url: 'http://b:1/', load: 7 }));
    } finally {
      await registry.close();
      await raw.quit();
    }
  });

  it('listing prunes ids whose record expired', async () => {
    const { registry, raw } = await fresh();
    try {
      await registry.register(record(), 100);
      await sleep(200);
      expect(await registry.list()).toEqual([]);
      expect(await raw.smembers(`${REDIS_KEY_PREFIX}mirrors`)).toEqual([]);
    } finally {
      await registry.close();
      await raw.quit();
    }
  });

  it('a malformed record in Redis is skipped and logged; the others are listed', async () => {
    const { url, raw } = await fresh();
    const faults: string[] = [];
    const registry = await RedisRegistry.connect({ logger: { fault: (m) => faults.push(m) } }, { url });
    try {
      await registry.register(record(), 60_000);
      await raw.set(`${REDIS_KEY_PREFIX}mirror:evil`, '{"id":"evil","url":"javascript:alert(1)"}');
      await raw.sadd(`${REDIS_KEY_PREFIX}mirrors`, 'evil');
      expect((await registry.list()).map((r) => r.id)).toEqual(['127.0.0.1:8080']);
      expect(faults.join('\n')).toMatch(/ignoring a bad record: .*url/);
    } finally {
      await registry.close();
      await raw.quit();
    }
  });

  it('no Redis at the address: MirrorUnavailableError within the connect timeout', async () => {
    const port = await freePort();
    const started = Date.now();
    const e = await RedisRegistry.connect({}, { url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 1_000 }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect(String(e)).toMatch(new RegExp(`127.0.0.1:${port}.*ECONNREFUSED`));
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('refuses a URL that is not redis://', async () => {
    await expect(RedisRegistry.connect({}, { url: 'http://127.0.0.1:6379' })).rejects.toThrow(InvalidArgumentError);
  });

  it('Redis restarting: commands fail fast meanwhile, then work again without reopening', async () => {
    const own = await startRedis();
    const registry = await RedisRegistry.connect({}, { url: own.url });
    try {
      await registry.register(record(), 60_000);
      await own.stop();
      const started = Date.now();
      await expect(registry.list()).rejects.toThrow(MirrorUnavailableError);
      expect(Date.now() - started).toBeLessThan(2_500);
      await own.restart();
      let listed: unknown;
      for (let i = 0; i < 50 && listed === undefined; i++) {
        listed = await registry.list().catch(() => undefined);
        if (listed === undefined) await sleep(100);
      }
      expect(listed).toEqual([]); // a fresh Redis: nothing persisted
      await registry.register(record(), 60_000);
      expect(await registry.list()).toHaveLength(1);
    } finally {
      await registry.close();
      await own.stop();
    }
  });

  it('close() is clean and idempotent, and quick when Redis is gone', async () => {
    const own = await startRedis();
    const registry = await RedisRegistry.connect({}, { url: own.url });
    await own.stop();
    const started = Date.now();
    await registry.close();
    await registry.close();
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
