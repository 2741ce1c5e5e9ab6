import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../../test/support/redis-server.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_TTL_INTERVALS, startHeartbeat } from '../src/heartbeat.js';
import { MemoryRegistry } from '../src/registry/memory-registry.js';
import { RedisRegistry } from '../src/registry/redis-registry.js';
import type { MirrorRecord, Registry } from '../src/registry/registry.js';
import { record } from './registry/registry-contract.js';

/** A registry that records every call and can be told to fail: a Map plus hooks. */
class RecordingRegistry extends MemoryRegistry {
  readonly calls: { op: string; record?: MirrorRecord; ttlMs?: number; id?: string }[] = [];
  failing = false;
  override async register(r: MirrorRecord, ttlMs: number, signal?: AbortSignal): Promise<void> {
    this.calls.push({ op: 'register', record: r, ttlMs });
    if (this.failing) throw new Error('registry down');
    return super.register(r, ttlMs, signal);
  }
  override async unregister(id: string, signal?: AbortSignal): Promise<void> {
    this.calls.push({ op: 'unregister', id });
    if (this.failing) throw new Error('registry down');
    return super.unregister(id, signal);
  }
  override toString(): string {
    return 'recording';
  }
}

function logger() {
  const lines: string[] = [];
  return { lines, info: (m: string) => lines.push(`INFO ${m}`), fault: (m: string) => lines.push(`FAULT ${m}`) };
}

const until = async (what: () => boolean, ms = 3_000) => {
  for (const end = Date.now() + ms; Date.now() < end && !what(); ) await sleep(10);
  return what();
};

describe('startHeartbeat', () => {
  it('defaults: every 2 s, TTL 3 intervals', () => {
    expect(DEFAULT_HEARTBEAT_INTERVAL_MS).toBe(2_000);
    expect(DEFAULT_TTL_INTERVALS).toBe(3);
  });

  it('registers at once, then refreshes with current load and a fresh timestamp', async () => {
    const registry = new RecordingRegistry();
    let load = 0;
    let now = 1_000;
    const hb = await startHeartbeat(
      { registry, now: () => now },
      {
        record: () => record({ load: load++ }),
        intervalMs: 20,
      },
      new AbortController().signal,
    );
    expect(registry.calls[0]).toEqual({ op: 'register', record: record({ load: 0, updated: 1_000 }), ttlMs: 60 });
    now = 2_000;
    expect(await until(() => registry.calls.length >= 3)).toBe(true);
    const later = registry.calls.at(-1)?.record;
    expect(later?.load).toBeGreaterThan(0);
    expect(later?.updated).toBe(2_000);
    await hb.stop();
  });

  it('stop() removes the record and ends the beats; a second stop() is harmless', async () => {
    const registry = new RecordingRegistry();
    const log = logger();
    const hb = await startHeartbeat(
      { registry, logger: log },
      { record: () => record(), intervalMs: 10 },
      new AbortController().signal,
    );
    await until(() => registry.calls.length >= 2);
    await hb.stop();
    await hb.stop();
    expect(registry.calls.at(-1)).toEqual({ op: 'unregister', id: '127.0.0.1:8080' });
    expect(await registry.list()).toEqual([]);
    const n = registry.calls.length;
    await sleep(50);
    expect(registry.calls.length).toBe(n);
    expect(log.lines.join('\n')).toMatch(/registered 127\.0\.0\.1:8080[\s\S]*unregistered 127\.0\.0\.1:8080/);
  });

  it('abort stops the beats and leaves the record to expire, as a crash would', async () => {
    let now = 0;
    const registry = new RecordingRegistry({ now: () => now });
    const c = new AbortController();
    const hb = await startHeartbeat({ registry }, { record: () => record(), intervalMs: 10, ttlMs: 30 }, c.signal);
    c.abort();
    const n = registry.calls.length;
    await sleep(50);
    expect(registry.calls.length).toBe(n);
    expect(await registry.list()).toHaveLength(1);
    now = 31;
    expect(await registry.list()).toHaveLength(0);
    await hb.stop(); // still allowed after abort: removes the record
    expect(registry.calls.at(-1)?.op).toBe('unregister');
  });

  it('a registry that is down is logged once and retried every beat; recovery is logged', async () => {
    const registry = new RecordingRegistry();
    registry.failing = true;
    const log = logger();
    const hb = await startHeartbeat(
      { registry, logger: log },
      { record: () => record(), intervalMs: 10 },
      new AbortController().signal,
    );
    await until(() => registry.calls.length >= 4);
    expect(log.lines.filter((l) => l.startsWith('FAULT'))).toHaveLength(1);
    expect(log.lines[0]).toMatch(/heartbeat to recording failed: registry down; retrying every 10 ms/);
    registry.failing = false;
    expect(await until(() => log.lines.some((l) => /works again/.test(l)))).toBe(true);
    expect(await registry.list()).toHaveLength(1);
    await hb.stop();
  });

  it('stop() with the registry down gives up within its bound and says when the record expires', async () => {
    const registry = new RecordingRegistry();
    const log = logger();
    const hb = await startHeartbeat(
      { registry, logger: log },
      { record: () => record(), intervalMs: 10 },
      new AbortController().signal,
    );
    registry.failing = true;
    await hb.stop();
    expect(log.lines.at(-1)).toMatch(/could not unregister 127\.0\.0\.1:8080 .*expires within 30 ms/);
  });

  it('a record() that throws counts as a failed beat, not a crash', async () => {
    const registry = new RecordingRegistry();
    const log = logger();
    let calls = 0;
    const hb = await startHeartbeat(
      { registry, logger: log },
      {
        record: () => {
          if (calls++ === 0) throw new Error('store unreadable');
          return record();
        },
        intervalMs: 10,
      },
      new AbortController().signal,
    );
    expect(log.lines[0]).toMatch(/store unreadable/);
    expect(await until(() => registry.calls.length > 0)).toBe(true);
    await hb.stop();
  });

  it('refuses bad timings and an already aborted signal', async () => {
    const registry: Registry = new MemoryRegistry();
    const ok = new AbortController().signal;
    await expect(startHeartbeat({ registry }, { record: () => record(), intervalMs: 0 }, ok)).rejects.toThrow(
      /intervalMs/,
    );
    await expect(
      startHeartbeat({ registry }, { record: () => record(), intervalMs: 100, ttlMs: 100 }, ok),
    ).rejects.toThrow(/ttlMs/);
    await expect(startHeartbeat({ registry }, { record: () => record() }, AbortSignal.abort())).rejects.toThrow();
  });
});

describe('startHeartbeat into a real Redis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('the record lives while beating, leaves on stop(), and expires within the TTL after a crash', async () => {
    const registry = await RedisRegistry.connect({}, { url: redis.url });
    try {
      const a = await startHeartbeat(
        { registry },
        { record: () => record({ id: 'a:1', url: 'http://a:1/' }), intervalMs: 100 },
        new AbortController().signal,
      );
      const crash = new AbortController();
      await startHeartbeat(
        { registry },
        { record: () => record({ id: 'b:1', url: 'http://b:1/' }), intervalMs: 100 },
        crash.signal,
      );
      await sleep(400); // several beats: both still there although the TTL (300 ms) has passed since registering
      expect((await registry.list()).map((r) => r.id).sort()).toEqual(['a:1', 'b:1']);
      await a.stop();
      expect((await registry.list()).map((r) => r.id)).toEqual(['b:1']);
      const crashed = Date.now();
      crash.abort();
      while ((await registry.list()).length > 0 && Date.now() - crashed < 2_000) await sleep(10);
      expect(await registry.list()).toEqual([]);
      expect(Date.now() - crashed).toBeLessThanOrEqual(300 + 150);
    } finally {
      await registry.close();
    }
  });
});
