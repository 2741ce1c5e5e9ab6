import { InvalidArgumentError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { parseRedisUrl, redacted } from '../../src/registry/redis-url.js';

describe('parseRedisUrl', () => {
  it('one server: host, port (default 6379), database, credentials, TLS', () => {
    expect(parseRedisUrl('redis://r')).toEqual({ kind: 'single', node: { host: 'r', port: 6379 }, db: 0, tls: false });
    expect(parseRedisUrl('rediss://u:p%40ss@r.example:7000/3')).toEqual({
      kind: 'single',
      node: { host: 'r.example', port: 7000 },
      db: 3,
      username: 'u',
      password: 'p@ss',
      tls: true,
    });
    expect(parseRedisUrl('redis://:secret@[::1]:6380/')).toMatchObject({
      node: { host: '::1', port: 6380 },
      password: 'secret',
    });
  });

  it('a cluster: seed nodes from redis+cluster://, or from redis:// with --redis-cluster', () => {
    expect(parseRedisUrl('redis+cluster://a:7000,b:7001,c')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
        { host: 'c', port: 6379 },
      ],
      tls: false,
    });
    expect(parseRedisUrl('redis://a:7000', { cluster: true })).toMatchObject({
      kind: 'cluster',
      nodes: [{ host: 'a', port: 7000 }],
    });
    expect(() => parseRedisUrl('redis+cluster://a:7000/2')).toThrow(/only database 0/);
  });

  it('Sentinels: their addresses (default 26379), the master name and a database', () => {
    expect(parseRedisUrl('redis+sentinel://s1,s2:26380/mymaster/2')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      master: 'mymaster',
      db: 2,
      tls: false,
    });
    expect(() => parseRedisUrl('redis+sentinel://s1:26379')).toThrow(/MASTER/);
  });

  it('refuses what is not a Redis URL, naming the problem and never the password', () => {
    for (const [url, why] of [
      ['http://r:6379', /expected redis:\/\//],
      ['redis://', /no host/],
      ['redis://a,b', /several hosts/],
      ['redis://r:70000', /out of range/],
      ['redis://r/16', /database number/],
      ['redis://r/x/y', /path/],
      ['redis://r:6379:1', /HOST\[:PORT\]/],
    ] as const) {
      expect(() => parseRedisUrl(url), url).toThrow(why);
      expect(() => parseRedisUrl(url)).toThrow(InvalidArgumentError);
    }
    expect(() => parseRedisUrl('redis://u:hunter2@r/99')).toThrow(/redis:\/\/u:\*\*\*@r\/99/);
    expect(() => parseRedisUrl('redis+sentinel://s/m', { cluster: true })).toThrow(/--redis-cluster/);
  });

  it('redacted() hides only the password', () => {
    expect(redacted('redis://u:hunter2@r:1/2')).toBe('redis://u:***@r:1/2');
    expect(redacted('redis+cluster://a:1,b:2')).toBe('redis+cluster://a:1,b:2');
  });
});
