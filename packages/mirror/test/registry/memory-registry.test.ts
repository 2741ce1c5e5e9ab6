import { describe, expect, it } from 'vitest';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { record, registryContract } from './registry-contract.js';

registryContract('MemoryRegistry', async () => {
  let now = 1_000;
  return {
    registry: new MemoryRegistry({ now: () => now }),
    pass: async (ms) => {
      now += ms;
    },
  };
});

describe('MemoryRegistry', () => {
  it('expires exactly at the TTL on its clock', async () => {
    let now = 0;
    const registry = new MemoryRegistry({ now: () => now });
    await registry.register(record(), 100);
    now = 99;
    expect(await registry.list()).toHaveLength(1);
    now = 100;
    expect(await registry.list()).toHaveLength(0);
  });

  it('refuses use after close', async () => {
    const registry = new MemoryRegistry();
    await registry.close();
    await expect(registry.list()).rejects.toThrow(/closed/);
  });
});
