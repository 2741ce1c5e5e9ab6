import { InvalidArgumentError } from '@thfc/format';
import { afterEach, describe, expect, it } from 'vitest';
import type { MirrorRecord, Registry } from '../../src/registry/registry.js';

/**
 * What every Registry must do, run by each implementation's test file
 * (memory, file, Redis): the contract DNS-Balance and the heartbeat rely on.
 * `pass(ms)` lets `ms` of registry time go by: a fake clock for the memory
 * registry, real waiting for Redis.
 */
export interface RegistryUnderTest {
  readonly registry: Registry;
  pass(ms: number): Promise<void>;
  cleanup?(): Promise<void>;
}

export function record(overrides: Partial<MirrorRecord> = {}): MirrorRecord {
  return {
    id: '127.0.0.1:8080',
    url: 'http://127.0.0.1:8080/',
    region: 'jp',
    capacity: 64,
    load: 0,
    health: 'ok',
    updated: 1_700_000_000_000,
    ...overrides,
  };
}

export function registryContract(name: string, make: () => Promise<RegistryUnderTest>, ttlMs = 300): void {
  describe(`${name}: Registry contract`, () => {
    let under: RegistryUnderTest | undefined;
    const open = async () => {
      under = await make();
      return under;
    };
    afterEach(async () => {
      await under?.registry.close();
      await under?.cleanup?.();
      under = undefined;
    });

    it('lists what was registered, with the URL normalised', async () => {
      const { registry } = await open();
      await registry.register(record({ url: 'http://127.0.0.1:8080' }), 60_000);
      await registry.register(record({ id: 'b:1', url: 'http://b:1/x', region: 'us' }), 60_000);
      const listed = (await registry.list()).sort((a, b) => a.id.localeCompare(b.id));
      expect(listed).toEqual([
        record({ url: 'http://127.0.0.1:8080/' }),
        record({ id: 'b:1', url: 'http://b:1/x/', region: 'us' }),
      ]);
    });

    it('a second register of the same id replaces the record', async () => {
      const { registry } = await open();
      await registry.register(record({ load: 1 }), 60_000);
      await registry.register(record({ load: 9, health: 'degraded' }), 60_000);
      expect(await registry.list()).toEqual([record({ load: 9, health: 'degraded' })]);
    });

    it('unregister removes the record; removing an unknown id is not an error', async () => {
      const { registry } = await open();
      await registry.register(record(), 60_000);
      await registry.unregister('127.0.0.1:8080');
      await registry.unregister('never-registered:1');
      expect(await registry.list()).toEqual([]);
    });

    it('a record not refreshed within its TTL is gone; a refreshed one stays', async () => {
      const { registry, pass } = await open();
      await registry.register(record({ id: 'a:1', url: 'http://a:1/' }), ttlMs);
      await registry.register(record({ id: 'b:1', url: 'http://b:1/' }), ttlMs);
      await pass(ttlMs / 2);
      await registry.register(record({ id: 'b:1', url: 'http://b:1/' }), ttlMs);
      await pass(ttlMs / 2 + ttlMs / 4);
      expect((await registry.list()).map((r) => r.id)).toEqual(['b:1']);
      await pass(ttlMs);
      expect(await registry.list()).toEqual([]);
    });

    it('refuses a malformed record and a bad TTL, and registers nothing', async () => {
      const { registry } = await open();
      await expect(registry.register(record({ region: 'Not A Region' }), 60_000)).rejects.toThrow(InvalidArgumentError);
      await expect(registry.register(record({ capacity: 0 }), 60_000)).rejects.toThrow(/capacity/);
      await expect(registry.register(record({ url: 'ftp://x/' }), 60_000)).rejects.toThrow(/url/);
      await expect(registry.register(record(), 0)).rejects.toThrow(/ttl/i);
      expect(await registry.list()).toEqual([]);
    });

    it('an aborted signal rejects with its reason', async () => {
      const { registry } = await open();
      const c = new AbortController();
      c.abort(new Error('stop'));
      await expect(registry.register(record(), 60_000, c.signal)).rejects.toThrow('stop');
      await expect(registry.list(c.signal)).rejects.toThrow('stop');
      await expect(registry.unregister('x', c.signal)).rejects.toThrow('stop');
    });

    it('holds a fleet: 200 mirrors listed, each once', async () => {
      const { registry } = await open();
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          registry.register(record({ id: `m${i}:80`, url: `http://m${i}/`, load: i }), 60_000),
        ),
      );
      const listed = await registry.list();
      expect(listed).toHaveLength(200);
      expect(new Set(listed.map((r) => r.id)).size).toBe(200);
    });
  });
}
