import { Resolver } from 'node:dns/promises';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError, MirrorUnavailableError, UsageError } from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/support/processes.js';
import { startRedis, type TestRedis } from '../../../../test/support/redis-server.js';
import { parseListenAddress, runDns } from '../../src/dns/run-dns.js';
import { startHeartbeat } from '../../src/heartbeat.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { record } from '../registry/registry-contract.js';
import { dig, digAnswers, digHeader } from './dig.js';

let dir: string;
let cleanup: () => Promise<void>;
let networksFile: string;
let mirrorsFile: string;
let redis: TestRedis;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('thfc-run-dns-'));
  networksFile = join(dir, 'networks');
  await writeFile(networksFile, '127.0.0.2/32 jp us\n127.0.0.3/32 us jp\ndefault us\n');
  mirrorsFile = join(dir, 'mirrors');
  await writeFile(
    mirrorsFile,
    ['http://127.0.0.1:8081/ jp', 'http://127.0.0.2:8082/ jp', 'http://127.0.0.3:8083/ us'].join('\n'),
  );
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  await cleanup?.();
});

const signal = () => new AbortController().signal;

describe('runDns', () => {
  it('with a mirrors file: dig from 127.0.0.2 and 127.0.0.3 gets the orders the networks file gives', async () => {
    const dns = await runDns(
      { zone: 'pool.test', listen: '127.0.0.1:0', mirrorsFile, networksFile },
      { signal: signal() },
    );
    try {
      const order = async (source: string) => {
        const out = await dig(dns.address, ['+short', '_thfc._tcp.pool.test', 'SRV'], { source });
        expect(out.code, out.stderr).toBe(0);
        return out.stdout.trim().split('\n');
      };
      // Equal badness within a region: the rendezvous tie-break decides, stably, per client.
      const jpFirst = await order('127.0.0.2');
      const usFirst = await order('127.0.0.3');
      expect(jpFirst.map((l) => l.split(' ')[2])).toEqual([
        expect.stringMatching(/808[12]/),
        expect.stringMatching(/808[12]/),
        '8083',
      ]);
      expect(usFirst[0]).toBe('0 10000 8083 m-127-0-0-3.pool.test.');
      expect(await order('127.0.0.2')).toEqual(jpFirst);

      const txt = await dig(dns.address, ['+short', 'pool.test', 'TXT'], { source: '127.0.0.3' });
      expect(txt.stdout.trim()).toMatch(/^"http:\/\/127\.0\.0\.3:8083\/" "http:\/\/127\.0\.0\.[12]:808[12]\/" /);
      const a = await dig(dns.address, ['pool.test', 'A'], { source: '127.0.0.2' });
      expect(digHeader(a.stdout).flags).toContain('aa');
      expect(digAnswers(a.stdout).map((r) => r[3])).toHaveLength(3);
      expect(digAnswers(a.stdout).every((r) => r[1] === 5)).toBe(true);
      expect(digAnswers(a.stdout)[2]?.[3]).toBe('127.0.0.3');
    } finally {
      await dns.close();
    }
  });

  it('with Redis: mirrors appear by heartbeat and leave on unregister within a refresh', async () => {
    const dns = await runDns(
      { zone: 'pool.test', listen: '127.0.0.1:0', redis: redis.url, networksFile, refreshMs: 50 },
      { signal: signal() },
    );
    const registry = await RedisRegistry.connect({}, { url: redis.url });
    const resolver = new Resolver({ timeout: 1_000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dns.address.port}`]);
    const txt = async () => (await resolver.resolveTxt('pool.test').catch(() => [[]]))[0] ?? [];
    try {
      expect(await txt()).toEqual([]);
      const hb = await startHeartbeat(
        { registry },
        { record: () => record({ id: 'm:1', url: 'http://127.0.0.1:9001/', region: 'us' }), intervalMs: 100 },
        signal(),
      );
      for (let i = 0; i < 40 && (await txt()).length === 0; i++) await sleep(25);
      expect(await txt()).toEqual(['http://127.0.0.1:9001/']);
      await hb.stop();
      const stopped = Date.now();
      while ((await txt()).length > 0 && Date.now() - stopped < 2_000) await sleep(10);
      expect(await txt()).toEqual([]);
      expect(Date.now() - stopped).toBeLessThan(500);
    } finally {
      await registry.close();
      await dns.close();
    }
  });

  it('abort closes it', async () => {
    const c = new AbortController();
    const dns = await runDns({ zone: 'pool.test', listen: '127.0.0.1:0', mirrorsFile }, { signal: c.signal });
    c.abort();
    await dns.close();
    const out = await dig(dns.address, ['pool.test', 'A']);
    expect(out.code).not.toBe(0);
  });

  it('start-up errors are typed and say what is wrong', async () => {
    const s = signal();
    await expect(runDns({ zone: 'a..b', mirrorsFile }, { signal: s })).rejects.toThrow(/bad zone name/);
    await expect(runDns({ zone: 'p.test', listen: 'localhost:53', mirrorsFile }, { signal: s })).rejects.toThrow(
      UsageError,
    );
    await expect(
      runDns({ zone: 'p.test', listen: '127.0.0.1:0', mirrorsFile, networksFile: join(dir, 'none') }, { signal: s }),
    ).rejects.toThrow(InputError);
    const badNetworks = join(dir, 'bad-networks');
    await writeFile(badNetworks, '10.0.0.0/8\n');
    await expect(
      runDns({ zone: 'p.test', listen: '127.0.0.1:0', mirrorsFile, networksFile: badNetworks }, { signal: s }),
    ).rejects.toThrow(/bad-networks line 1/);
    await expect(
      runDns({ zone: 'p.test', listen: '127.0.0.1:0', redis: 'redis://127.0.0.1:1' }, { signal: s }),
    ).rejects.toThrow(MirrorUnavailableError);
    await expect(runDns({ zone: 'p.test', listen: '127.0.0.1:0', ttlSeconds: -1 }, { signal: s })).rejects.toThrow(
      /--ttl/,
    );
    const first = await runDns({ zone: 'p.test', listen: '127.0.0.1:0', mirrorsFile }, { signal: s });
    try {
      await expect(
        runDns({ zone: 'p.test', listen: `127.0.0.1:${first.address.port}`, mirrorsFile }, { signal: s }),
      ).rejects.toThrow(MirrorUnavailableError);
    } finally {
      await first.close();
    }
  });

  it('parses listen addresses', () => {
    expect(parseListenAddress('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(parseListenAddress('[::1]:53')).toEqual({ host: '::1', port: 53 });
    expect(parseListenAddress('0.0.0.0')).toEqual({ host: '0.0.0.0', port: 53 });
    for (const bad of ['localhost:53', '1.2.3:53', '127.0.0.1:99999', '127.0.0.1:x', ''])
      expect(() => parseListenAddress(bad), bad).toThrow(UsageError);
  });
});
