import { UsageError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { formatListen, parseServeListen } from '../src/listen-address.js';

describe('parseServeListen', () => {
  it('reads HOST:PORT and [IPv6]:PORT', () => {
    expect(parseServeListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseServeListen('0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseServeListen('localhost:80')).toEqual({ host: 'localhost', port: 80 });
    expect(parseServeListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(formatListen({ host: '::1', port: 1 })).toBe('[::1]:1');
    expect(formatListen({ host: '10.0.0.1', port: 1 })).toBe('10.0.0.1:1');
  });

  it('refuses anything else with the expected form', () => {
    for (const bad of ['8080', '127.0.0.1', ':8080', '127.0.0.1:65536', '::1:80', 'a b:1', '127.0.0.1:-1']) {
      expect(() => parseServeListen(bad), bad).toThrow(UsageError);
    }
    expect(() => parseServeListen('x')).toThrow(/HOST:PORT/);
  });
});
