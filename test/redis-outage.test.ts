import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { ENTRY, execFileP, tempDir } from './support/processes.js';
import { freePort, spawnRedis, stopRedis } from './support/redis-server.js';

/**
 * A fleet through Redis outages (issue 15 §2), with real redis-server
 * processes and the real thfc-mirror commands: a mirror whose Redis is down
 * when it starts serves anyway and registers once Redis is up.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let store: string;
const daemons: Daemon[] = [];
const redises: Awaited<ReturnType<typeof spawnRedis>>[] = [];

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-redis-outage-'));
  store = join(work, 'store');
  const img = join(work, 'small.img');
  await makeImage(img, [['text', 2]]);
  await execFileP(process.execPath, [ENTRY.pack, 'pack', img, '--store', store]);
}, 60_000);

afterAll(async () => {
  for (const d of daemons) await d.stop();
  for (const r of redises) await stopRedis(r);
  await cleanupWork?.();
});

const redisCli = async (port: number, ...args: string[]) =>
  (await execFileP('redis-cli', ['-p', String(port), ...args])).stdout.trim();

describe('thfc-mirror serve --redis', () => {
  it('with Redis down at start: serves at once, says the registry is retried, and registers once Redis is up', async () => {
    const redisPort = await freePort();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const serve = new Daemon('serve', process.execPath, [
      ENTRY.mirror,
      'serve',
      store,
      '--listen',
      `127.0.0.1:${port}`,
      '--advertise',
      url,
      '--redis',
      `redis://127.0.0.1:${redisPort}`,
    ]);
    daemons.push(serve);
    await waitUntil(serve, 'serving', async () => (await fetch(`${url}small.idx`)).ok);
    expect(serve.output).toContain(
      `FAULT heartbeat to redis-registry(redis://127.0.0.1:${redisPort}) failed: redis://127.0.0.1:${redisPort} unavailable: register 127.0.0.1:${port}: not connected`,
    );
    redises.push(await spawnRedis(redisPort));
    await waitUntil(serve, 'registered', async () => (await redisCli(redisPort, 'SMEMBERS', '{thfc}:mirrors')) !== '');
    expect(await redisCli(redisPort, 'SMEMBERS', '{thfc}:mirrors')).toBe(`127.0.0.1:${port}`);
    expect(serve.output).toMatch(/heartbeat to .* works again: 127\.0\.0\.1:\d+ registered/);
    expect(serve.running).toBe(true);
  }, 60_000);
});
