import { describe, expect, it } from 'vitest';
import { AccessLog, escapeTarget } from '../src/access-log.js';

describe('AccessLog', () => {
  it('writes one line per request, batched until the end of the turn', async () => {
    const writes: string[] = [];
    const log = new AccessLog({ write: (t) => writes.push(t), now: () => new Date(0) });
    log.record({ remote: '127.0.0.1', method: 'GET', target: '/a.idx', status: 200, bytes: 10, ms: 0.5 });
    log.record({ remote: undefined, method: 'HEAD', target: '/x', status: 404, bytes: 0, ms: 1 });
    expect(writes).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([
      '1970-01-01T00:00:00.000Z 127.0.0.1 "GET /a.idx HTTP/1.1" 200 10 0.50ms\n1970-01-01T00:00:00.000Z - "HEAD /x HTTP/1.1" 404 0 1.00ms\n',
    ]);
  });

  it('flushes early past the byte bound', () => {
    const writes: string[] = [];
    const log = new AccessLog({ write: (t) => writes.push(t) }, { flushBytes: 10 });
    log.record({ remote: 'r', method: 'GET', target: '/', status: 200, bytes: 0, ms: 0 });
    expect(writes.length).toBe(1);
  });

  it('escapes what could forge a line or break a parser, and clips long targets', () => {
    expect(escapeTarget('/a\r\n"x"\\\0é')).toBe('/a\\x0d\\x0a\\x22x\\x22\\x5c\\x00\\xe9');
    expect(escapeTarget('/\u2028')).toBe('/\\u2028');
    const long = escapeTarget(`/${'a'.repeat(1000)}`);
    expect(long.length).toBe(259);
    expect(long.endsWith('...')).toBe(true);
  });
});
