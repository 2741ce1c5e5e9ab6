import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../packages/mirror/test/dns/dig.js';
import { Daemon, waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { ENTRY, execFileP, tempDir } from './support/processes.js';
import { freePort, spawnRedis, startRedis, stopRedis } from './support/redis-server.js';

/**
 * A fleet through Redis outages (issue 15 §2), with real redis-server
 * processes and the real thfc-mirror commands: a mirror whose Redis is down
 * when it starts serves anyway and registers once Redis is up; DNS-Balance
 * answers with the mirrors it knew all through a Redis restart.
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

/** Starts `thfc-mirror serve` of the store on 127.0.0.1:port, advertised by its URL, registering in redisUrl. */
function serveMirror(port: number, redisUrl: string): Daemon {
  const serve = new Daemon('serve', process.execPath, [
    ENTRY.mirror,
    'serve',
    store,
    '--listen',
    `127.0.0.1:${port}`,
    '--advertise',
    `http://127.0.0.1:${port}/`,
    '--redis',
    redisUrl,
  ]);
  daemons.push(serve);
  return serve;
}

describe('thfc-mirror serve --redis', () => {
  it('with Redis down at start: serves at once, says the registry is retried, and registers once Redis is up', async () => {
    const redisPort = await freePort();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const serve = serveMirror(port, `redis://127.0.0.1:${redisPort}`);
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

describe('thfc-mirror dns --redis', () => {
  it('a Redis restart (empty, no persistence) never empties the answers: dig every 50 ms throughout', async () => {
    const redis = await startRedis();
    try {
      const port = await freePort();
      const serve = serveMirror(port, redis.url);
      const dnsAddress = { host: '127.0.0.1', port: await freePort() };
      const dns = new Daemon('dns', process.execPath, [
        ENTRY.mirror,
        'dns',
        '--zone',
        'pool.test',
        '--listen',
        `127.0.0.1:${dnsAddress.port}`,
        '--redis',
        redis.url,
      ]);
      daemons.push(dns);
      // The SRV answer's ports, as dig prints them (`PRIORITY WEIGHT PORT TARGET`).
      const srv = async () =>
        (await dig(dnsAddress, ['+short', '_thfc._tcp.pool.test', 'SRV'])).stdout
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[2])
          .join(' ');
      await waitUntil(dns, 'the mirror in DNS', async () => (await srv()) === String(port));

      const answers: string[] = [];
      let digging = true;
      const digger = (async () => {
        while (digging) {
          answers.push(await srv());
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await redis.restart();
      expect(await redisCli(redis.port, 'DBSIZE')).toBe('0'); // it came back empty
      await waitUntil(serve, 'the heartbeat back in Redis', async () => (await redisCli(redis.port, 'DBSIZE')) !== '0');
      await new Promise((r) => setTimeout(r, 1_000));
      digging = false;
      await digger;
      expect(answers.length).toBeGreaterThan(10);
      expect(answers.filter((a) => a !== String(port))).toEqual([]);
    } finally {
      for (const d of daemons.splice(0)) await d.stop();
      await redis.stop();
    }
  }, 90_000);
});
