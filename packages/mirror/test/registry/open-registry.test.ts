import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, MirrorUnavailableError, UsageError } from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/support/processes.js';
import { freePort, startRedis, type TestRedis } from '../../../../test/support/redis-server.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { openRegistry } from '../../src/registry/open-registry.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';

let redis: TestRedis;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  redis = await startRedis();
  ({ dir, cleanup } = await tempDir('thfc-open-registry-'));
});
afterAll(async () => {
  await redis?.stop();
  await cleanup?.();
});

describe('openRegistry', () => {
  it('--redis: a connected Redis registry', async () => {
    const r = await openRegistry({ redis: redis.url });
    expect(r).toBeInstanceOf(RedisRegistry);
    expect(await r.list()).toEqual([]);
    await r.close();
  });

  it('--redis-cluster without --redis is a usage error', async () => {
    await expect(openRegistry({ redisCluster: true })).rejects.toThrow(UsageError);
  });

  it('--mirrors: the file registry, read at once', async () => {
    const file = join(dir, 'mirrors');
    await writeFile(file, 'http://127.0.0.1:1/ jp\n');
    const r = await openRegistry({ mirrorsFile: file });
    expect(r).toBeInstanceOf(FileRegistry);
    expect(await r.list()).toHaveLength(1);
    await r.close();
  });

  it('neither: an empty in-process registry', async () => {
    const r = await openRegistry({});
    expect(r).toBeInstanceOf(MemoryRegistry);
    expect(await r.list()).toEqual([]);
  });

  it('start-up mistakes are typed and say what to fix', async () => {
    await expect(openRegistry({ redis: redis.url, mirrorsFile: 'x' })).rejects.toThrow(UsageError);
    await expect(openRegistry({ mirrorsFile: join(dir, 'missing') })).rejects.toThrow(InputError);
    const bad = join(dir, 'bad');
    await writeFile(bad, 'http://127.0.0.1:1/\n');
    await expect(openRegistry({ mirrorsFile: bad })).rejects.toThrow(/bad line 1: expected/);
    const port = await freePort();
    await expect(openRegistry({ redis: `redis://127.0.0.1:${port}` })).rejects.toThrow(MirrorUnavailableError);
  });
});
