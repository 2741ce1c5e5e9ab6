import { MirrorUnavailableError, UsageError } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_UNKNOWN_TTL_SECONDS,
  discoverMirrors,
  MAX_DISCOVERED_MIRRORS,
  MAX_TTL_SECONDS,
  PoolNotServedError,
} from '../src/mirrors/discover.js';
import { type FakeDns, startFakeDns } from './dns-fake.js';

let dns: FakeDns;
beforeEach(async () => {
  dns = await startFakeDns();
});
afterEach(async () => {
  await dns.close();
});

const discover = (options: Parameters<typeof discoverMirrors>[1] = {}) =>
  discoverMirrors('pool.test', { dns: dns.server, timeoutMs: 300, ...options });

describe('discoverMirrors', () => {
  it('SRV first: sorted by priority then weight, in-zone targets resolved through the same server', async () => {
    dns.records.set('_thfc._tcp.pool.test SRV', [
      { type: 'SRV', data: { priority: 2, weight: 10, port: 8083, target: 'm-3.pool.test' } },
      { type: 'SRV', data: { priority: 0, weight: 10, port: 8081, target: 'm-1.pool.test' } },
      { type: 'SRV', data: { priority: 1, weight: 5, port: 8082, target: 'outside.example' } },
      { type: 'SRV', data: { priority: 1, weight: 50, port: 8084, target: 'm-6.pool.test' } },
    ]);
    dns.records.set('m-1.pool.test A', [{ type: 'A', data: '127.0.0.1', ttl: 7 }]);
    dns.records.set('m-3.pool.test A', [{ type: 'A', data: '127.0.0.3', ttl: 4 }]);
    dns.records.set('m-6.pool.test AAAA', [{ type: 'AAAA', data: '::1', ttl: 9 }]);
    dns.records.set('pool.test TXT', [{ type: 'TXT', data: ['http://ignored/'] }]);
    expect(await discover()).toEqual({
      urls: ['http://127.0.0.1:8081/', 'http://[::1]:8084/', 'http://outside.example:8082/', 'http://127.0.0.3:8083/'],
      ttlSeconds: 4,
      via: 'SRV',
    });
  });

  it('then TXT: every http(s) URL string, in order, as directories', async () => {
    dns.records.set('pool.test TXT', [
      { type: 'TXT', data: ['http://b:1/store', 'not a url', 'ftp://x/', 'https://a/'] },
      { type: 'TXT', data: ['http://c:2/'] },
    ]);
    dns.records.set('pool.test A', [{ type: 'A', data: '127.0.0.9', ttl: 3 }]);
    expect(await discover()).toEqual({
      urls: ['http://b:1/store/', 'https://a/', 'http://c:2/'],
      ttlSeconds: 3,
      via: 'TXT',
    });
  });

  it('then A and AAAA, with the default port', async () => {
    dns.records.set('pool.test A', [
      { type: 'A', data: '127.0.0.2', ttl: 30 },
      { type: 'A', data: '127.0.0.3', ttl: 30 },
    ]);
    dns.records.set('pool.test AAAA', [{ type: 'AAAA', data: '::1', ttl: 30 }]);
    expect(await discover({ defaultPort: 8080 })).toEqual({
      urls: ['http://127.0.0.2:8080/', 'http://127.0.0.3:8080/', 'http://[::1]:8080/'],
      ttlSeconds: 30,
      via: 'A',
    });
    expect((await discover()).urls[0]).toBe('http://127.0.0.2:80/');
  });

  it('TTL: clamped to 1 s … 5 min, and a default when no answer carried one', async () => {
    dns.records.set('pool.test TXT', [{ type: 'TXT', data: ['http://a/'] }]);
    expect((await discover()).ttlSeconds).toBe(DEFAULT_UNKNOWN_TTL_SECONDS);
    dns.records.set('pool.test A', [{ type: 'A', data: '127.0.0.1', ttl: 0 }]);
    expect((await discover()).ttlSeconds).toBe(1);
    dns.records.set('pool.test A', [{ type: 'A', data: '127.0.0.1', ttl: 86_400 }]);
    expect((await discover()).ttlSeconds).toBe(MAX_TTL_SECONDS);
  });

  it('drops duplicates and keeps at most MAX_DISCOVERED_MIRRORS', async () => {
    dns.records.set('pool.test TXT', [
      { type: 'TXT', data: [...Array.from({ length: 40 }, (_, i) => `http://m${i}/`), 'http://m0/'] },
    ]);
    const { urls } = await discover();
    expect(urls).toHaveLength(MAX_DISCOVERED_MIRRORS);
    expect(new Set(urls).size).toBe(urls.length);
  });

  it('an SRV target that does not resolve is skipped; none resolving falls through to TXT', async () => {
    dns.records.set('_thfc._tcp.pool.test SRV', [
      { type: 'SRV', data: { priority: 0, weight: 1, port: 1, target: 'gone.pool.test' } },
    ]);
    dns.records.set('pool.test TXT', [{ type: 'TXT', data: ['http://fallback/'] }]);
    expect(await discover()).toMatchObject({ urls: ['http://fallback/'], via: 'TXT' });
  });

  it('an existing pool with no mirrors, an unknown pool, and a dead server are MirrorUnavailableError', async () => {
    dns.records.set('pool.test SOA', []);
    await expect(discover()).rejects.toThrow(/pool pool\.test has no live mirrors/);
    await expect(discoverMirrors('other.test', { dns: dns.server, timeoutMs: 300 })).rejects.toThrow(
      MirrorUnavailableError,
    );
    dns.fault = () => 'servfail';
    await expect(discover()).rejects.toThrow(/ESERVFAIL/);
    dns.fault = () => 'refused';
    await expect(discover()).rejects.toThrow(new PoolNotServedError(`dns ${dns.server}`, 'pool.test'));
    await expect(discover()).rejects.toThrow(/does not serve pool pool\.test \(it answered REFUSED\)/);
    dns.fault = () => 'drop';
    const started = Date.now();
    await expect(discover()).rejects.toThrow(/ETIMEOUT/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('abort cancels the queries and rejects with the reason', async () => {
    dns.fault = () => 'drop';
    const c = new AbortController();
    const pending = discover({ signal: c.signal, timeoutMs: 5_000 });
    setTimeout(() => c.abort(new Error('unmounting')), 50);
    const started = Date.now();
    await expect(pending).rejects.toThrow('unmounting');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('checks its arguments; --dns may be a host name, looked up once', async () => {
    await expect(discoverMirrors('bad..name', { dns: dns.server })).rejects.toThrow(UsageError);
    await expect(discoverMirrors('pool.test', { dns: '127.0.0.1:99999' })).rejects.toThrow(/bad --dns/);
    await expect(discoverMirrors('pool.test', { dns: 'no-such-host.invalid:53' })).rejects.toThrow(
      /cannot resolve no-such-host\.invalid/,
    );
    dns.records.set('pool.test TXT', [{ type: 'TXT', data: ['http://a/'] }]);
    const port = dns.server.split(':')[1];
    expect((await discoverMirrors('Pool.Test.', { dns: `localhost:${port}`, timeoutMs: 300 })).urls).toEqual([
      'http://a/',
    ]);
  });
});
