import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_REGISTRY_REFRESH_MS, RegistrySnapshot } from '../../src/dns/registry-snapshot.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import type { MirrorRecord } from '../../src/registry/registry.js';
import { record } from '../registry/registry-contract.js';

class FlakyRegistry extends MemoryRegistry {
  failing = false;
  /** Registry.epoch: bump it to play a reconnection. */
  epoch = 0;
  lists = 0;
  override async list(signal?: AbortSignal): Promise<MirrorRecord[]> {
    this.lists++;
    if (this.failing) throw new Error('redis down');
    return super.list(signal);
  }
  override toString(): string {
    return 'flaky';
  }
}

const until = async (what: () => boolean, ms = 2_000) => {
  for (const end = Date.now() + ms; Date.now() < end && !what(); ) await sleep(5);
  return what();
};

describe('RegistrySnapshot', () => {
  it('refreshes twice a second by default', () => {
    expect(DEFAULT_REGISTRY_REFRESH_MS).toBe(500);
  });

  it('reads at start, then follows the registry', async () => {
    const registry = new FlakyRegistry();
    await registry.register(record(), 60_000);
    const snapshot = new RegistrySnapshot({ registry }, { refreshMs: 10 });
    await snapshot.start(new AbortController().signal);
    expect(snapshot.records).toHaveLength(1);
    await registry.unregister(record().id);
    expect(await until(() => snapshot.records.length === 0)).toBe(true);
    await snapshot.stop();
  });

  it('keeps the same array while the registry lists the same record objects in the same order', async () => {
    const registry = new FlakyRegistry();
    const one = record();
    const two = { ...record(), id: 'second:8080', url: 'http://second:8080/' };
    let listed: MirrorRecord[] = [one];
    registry.list = async () => {
      registry.lists++;
      return [...listed];
    };
    const snapshot = new RegistrySnapshot({ registry }, { refreshMs: 5 });
    await snapshot.start(new AbortController().signal);
    const first = snapshot.records;
    await until(() => registry.lists > 5);
    // A new array each time from the registry, the same records: what was worked out from the first stays valid.
    expect(snapshot.records).toBe(first);
    listed = [one, two];
    expect(await until(() => snapshot.records.length === 2)).toBe(true);
    const second = snapshot.records;
    listed = [two, one];
    expect(await until(() => snapshot.records !== second)).toBe(true);
    expect(snapshot.records).toEqual([two, one]);
    await snapshot.stop();
  });

  it('keeps the last list while the registry fails, logging once, and says when it recovers', async () => {
    const registry = new FlakyRegistry();
    await registry.register(record(), 60_000);
    const lines: string[] = [];
    const snapshot = new RegistrySnapshot(
      { registry, logger: { info: (m) => lines.push(`INFO ${m}`), fault: (m) => lines.push(`FAULT ${m}`) } },
      { refreshMs: 10 },
    );
    await snapshot.start(new AbortController().signal);
    registry.failing = true;
    const before = registry.lists;
    await until(() => registry.lists > before + 5);
    expect(snapshot.records).toHaveLength(1);
    expect(lines).toEqual(['FAULT reading flaky failed: redis down; answering from the last list']);
    registry.failing = false;
    expect(await until(() => lines.length === 2)).toBe(true);
    expect(lines[1]).toBe('INFO flaky answers again: 1 live mirror(s)');
    await snapshot.stop();
  });

  it('a failing first read fails start(); abort and stop() end the refreshes', async () => {
    const registry = new FlakyRegistry();
    registry.failing = true;
    await expect(new RegistrySnapshot({ registry }).start(new AbortController().signal)).rejects.toThrow('redis down');
    registry.failing = false;
    const c = new AbortController();
    const snapshot = new RegistrySnapshot({ registry }, { refreshMs: 5 });
    await snapshot.start(c.signal);
    c.abort();
    const n = registry.lists;
    await sleep(40);
    expect(registry.lists).toBeLessThanOrEqual(n + 1);
    await snapshot.stop();
  });

  it('a registry back empty after failing, or reconnected, keeps its mirrors for the grace, beside those back', async () => {
    const registry = new FlakyRegistry();
    const a = record({ id: 'a:1', url: 'http://a:1/' });
    const b = record({ id: 'b:1', url: 'http://b:1/' });
    await registry.register(a, 60_000);
    await registry.register(b, 60_000);
    const lines: string[] = [];
    const snapshot = new RegistrySnapshot(
      { registry, logger: { info: (m) => lines.push(m), fault: () => {} } },
      { refreshMs: 10, recoveryGraceMs: 300 },
    );
    await snapshot.start(new AbortController().signal);
    const ids = () => snapshot.records.map((r) => r.id);
    // A restart: unreachable, then back empty, then one heartbeat.
    registry.failing = true;
    await registry.unregister(a.id);
    await registry.unregister(b.id);
    await until(() => lines.length > 0 || registry.lists > 3);
    registry.failing = false;
    expect(await until(() => lines.length === 1)).toBe(true);
    expect(lines[0]).toBe(
      'flaky answers again: 0 live mirror(s); 2 more kept from before until their heartbeats return',
    );
    expect(ids()).toEqual(['a:1', 'b:1']);
    await registry.register({ ...b, load: 7 }, 60_000);
    expect(await until(() => snapshot.records[0]?.load === 7)).toBe(true);
    expect(ids()).toEqual(['b:1', 'a:1']);
    // After the grace, only what the registry lists: a never came back.
    expect(await until(() => ids().length === 1, 2_000)).toBe(true);
    expect(ids()).toEqual(['b:1']);
    // A reconnection with no failed read (a restart between two reads) holds the same way.
    registry.epoch++;
    await registry.unregister(b.id);
    await sleep(100);
    expect(ids()).toEqual(['b:1']);
    // ...while without one an unregistered mirror leaves at the next read.
    expect(await until(() => ids().length === 0, 2_000)).toBe(true);
    await registry.register(a, 60_000);
    expect(await until(() => ids().length === 1)).toBe(true);
    await registry.unregister(a.id);
    expect(await until(() => ids().length === 0, 500)).toBe(true);
    await snapshot.stop();
  });
});
