import { rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, UsageError } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/support/processes.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { record, registryContract } from './registry-contract.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('thfc-file-registry-'));
});
afterEach(async () => {
  await cleanup();
});

// The heartbeat side of the file registry (in-process records) keeps the whole contract.
registryContract('FileRegistry (heartbeats over an empty file)', async () => {
  const file = join(dir, 'mirrors');
  await writeFile(file, '# none\n');
  let now = 1_000;
  return {
    registry: new FileRegistry({ now: () => now }, { file }),
    pass: async (ms) => {
      now += ms;
    },
  };
});

describe('FileRegistry', () => {
  it('lists the file as live, healthy, idle mirrors', async () => {
    const file = join(dir, 'mirrors');
    await writeFile(file, 'http://127.0.0.1:8080/ jp 10\nhttp://127.0.0.2:8080/ us\n');
    const registry = new FileRegistry({ now: () => 5 }, { file });
    expect(await registry.list()).toEqual([
      {
        id: '127.0.0.1:8080',
        url: 'http://127.0.0.1:8080/',
        region: 'jp',
        capacity: 10,
        load: 0,
        health: 'ok',
        updated: 5,
      },
      {
        id: '127.0.0.2:8080',
        url: 'http://127.0.0.2:8080/',
        region: 'us',
        capacity: 64,
        load: 0,
        health: 'ok',
        updated: 5,
      },
    ]);
    expect(String(registry)).toBe(`file-registry(${file})`);
  });

  it('a heartbeat replaces the file record with the same id, until it expires', async () => {
    const file = join(dir, 'mirrors');
    await writeFile(file, 'http://127.0.0.1:8080/ jp 10\n');
    let now = 0;
    const registry = new FileRegistry({ now: () => now }, { file });
    await registry.register(record({ load: 7, health: 'degraded', capacity: 10 }), 1_000);
    expect(await registry.list()).toEqual([record({ load: 7, health: 'degraded', capacity: 10 })]);
    now = 2_000;
    expect((await registry.list())[0]?.load).toBe(0);
  });

  it('re-reads the file when it changes', async () => {
    const file = join(dir, 'mirrors');
    await writeFile(file, 'http://127.0.0.1:8080/ jp\nhttp://127.0.0.2:8080/ us\n');
    const registry = new FileRegistry({}, { file });
    expect(await registry.list()).toHaveLength(2);
    await writeFile(file, 'http://127.0.0.1:8080/ jp\n# http://127.0.0.2:8080/ us\n');
    await utimes(file, new Date(), new Date(Date.now() + 5_000)); // a distinct mtime even on coarse clocks
    expect((await registry.list()).map((r) => r.id)).toEqual(['127.0.0.1:8080']);
  });

  it('a file gone or broken after start makes list() fail with the reason', async () => {
    const file = join(dir, 'mirrors');
    await writeFile(file, 'http://127.0.0.1:8080/ jp\n');
    const registry = new FileRegistry({}, { file });
    await registry.list();
    await writeFile(file, 'http://127.0.0.1:8080/\n');
    await utimes(file, new Date(), new Date(Date.now() + 10_000));
    await expect(registry.list()).rejects.toThrow(UsageError);
    await rm(file);
    await expect(registry.list()).rejects.toThrow(InputError);
    await expect(registry.list()).rejects.toThrow(/no such file/);
  });
});
