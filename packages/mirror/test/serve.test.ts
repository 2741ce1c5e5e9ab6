import { createServer } from 'node:net';
import { join } from 'node:path';
import { InputError, UsageError } from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../../test/support/redis-server.js';
import { RedisRegistry } from '../src/registry/redis-registry.js';
import { runServe, startMirror } from '../src/serve.js';
import { get, packImage, tempDir, testIo } from './helpers.js';

let work: string;
let cleanup: () => Promise<void>;
let store: string;
let redis: TestRedis;

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir());
  store = join(work, 'store');
  await packImage(work, store, 'img', [['t', 128 * 1024]]);
  redis = await startRedis();
}, 60_000);

afterAll(async () => {
  await redis?.stop();
  await cleanup?.();
});

describe('startMirror / runServe', () => {
  it('registers in Redis with its advertised URL, region and capacity, and unregisters on close', async () => {
    const registry = await RedisRegistry.connect({}, { url: redis.url });
    try {
      const m = await startMirror(
        {
          store,
          listen: '127.0.0.1:0',
          accessLog: false,
          redis: redis.url,
          region: 'jp',
          advertise: 'http://mirror.test:8080',
          maxInflight: 32,
        },
        testIo(),
      );
      const records = await registry.list();
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        id: 'mirror.test:8080',
        url: 'http://mirror.test:8080/',
        region: 'jp',
        capacity: 32,
        health: 'ok',
      });
      expect((await get(`${m.url}img.idx`)).status).toBe(200);
      await m.close();
      expect(await registry.list()).toHaveLength(0);
    } finally {
      await registry.close();
    }
  });

  it('serves until its signal aborts, then reports what it did', async () => {
    const stop = new AbortController();
    const io = testIo(stop.signal);
    const done = runServe({ store, listen: '127.0.0.1:0', accessLog: true }, io);
    let url: string | undefined;
    for (let i = 0; i < 200 && !url; i++) {
      url = /serving \S+ on (\S+)/.exec(io.err())?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 10));
    }
    expect((await get(`${url}img.idx`)).status).toBe(200);
    stop.abort();
    const summary = await done;
    expect(summary.requests).toBe(1);
    expect(io.out()).toMatch(/"GET \/img\.idx HTTP\/1\.1" 200/);
  });

  it('refuses what it cannot do, with a one-line reason', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      await expect(startMirror({ store, listen: `127.0.0.1:${port}` }, testIo())).rejects.toThrow(/address is in use/);
    } finally {
      busy.close();
    }
    await expect(startMirror({ store: join(work, 'missing'), listen: '127.0.0.1:0' }, testIo())).rejects.toThrow(
      InputError,
    );
    await expect(startMirror({ store, listen: 'nonsense' }, testIo())).rejects.toThrow(UsageError);
    await expect(startMirror({ store, listen: '127.0.0.1:0', advertise: 'http://x/' }, testIo())).rejects.toThrow(
      /--redis or --mirrors-file/,
    );
    // A pull-through mirror may start from nothing: its store is created.
    const m = await startMirror(
      { store: join(work, 'new', 'store'), listen: '127.0.0.1:0', upstreams: ['http://127.0.0.1:9/'] },
      testIo(),
    );
    await m.close();
  });
});
