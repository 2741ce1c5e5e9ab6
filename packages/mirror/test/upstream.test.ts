import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IndexFormatError, InvalidArgumentError, MirrorUnavailableError, SignatureError } from '@thfc/format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchListing, normaliseBase, Upstream } from '../src/upstream.js';

let server: Server;
let base: string;
const routes = new Map<string, [number, string]>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const [status, body] = routes.get(req.url ?? '') ?? [404, ''];
    res.writeHead(status, { 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const signal = () => AbortSignal.timeout(10_000);

describe('normaliseBase', () => {
  it('names a directory with one trailing slash', () => {
    expect(normaliseBase('http://h:1')).toBe('http://h:1/');
    expect(normaliseBase('http://h/a/b')).toBe('http://h/a/b/');
    expect(normaliseBase('https://h/a/')).toBe('https://h/a/');
    for (const bad of ['ftp://h/', 'h:1', 'http://h/x?y', 'http://u:p@h/', 'http://h/img.idx']) {
      expect(() => normaliseBase(bad), bad).toThrow(InvalidArgumentError);
    }
  });
});

describe('fetchListing / Upstream', () => {
  it('reads a listing, and says clearly when there is none or it is garbage', async () => {
    routes.set('/ok/index.json', [200, JSON.stringify({ format: 'thfc-store-listing', version: 1, indexes: [] })]);
    routes.set('/junk/index.json', [200, '<html>']);
    routes.set('/down/index.json', [503, '']);
    expect(await fetchListing(`${base}ok/`, 5000, signal())).toEqual([]);
    await expect(fetchListing(`${base}none/`, 5000, signal())).rejects.toThrow(/no store listing/);
    await expect(fetchListing(`${base}junk/`, 5000, signal())).rejects.toThrow(IndexFormatError);
    await expect(fetchListing(`${base}down/`, 5000, signal())).rejects.toThrow(MirrorUnavailableError);
    await expect(fetchListing('http://127.0.0.1:9/', 5000, signal())).rejects.toThrow(MirrorUnavailableError);
  });

  it('takes the listing from the first upstream that has one, and an index nobody has is undefined', async () => {
    const up = new Upstream({}, { urls: [`${base}none`, `${base}ok/`] });
    try {
      expect((await up.fetchListing(signal())).base).toBe(`${base}ok/`);
      expect(await up.fetchIndex('img', signal())).toBeUndefined();
      expect(up.toString()).toMatch(/^failover\(verified\(http\(/);
    } finally {
      await up.close();
    }
    const down = new Upstream({}, { urls: ['http://127.0.0.1:9/'] });
    try {
      await expect(down.fetchIndex('img', signal())).rejects.toThrow(MirrorUnavailableError);
    } finally {
      await down.close();
    }
  });
});

describe('Upstream.fetchProfile', () => {
  /** Passes only bodies that say "good"; the refusal is a ThfcError, as the real check's are. */
  const check = (bytes: Uint8Array) => {
    const text = Buffer.from(bytes).toString();
    if (!text.startsWith('good')) throw new SignatureError(`${text} is no good`);
  };
  const upstream = (...dirs: string[]) => new Upstream({}, { urls: dirs.map((d) => `${base}${d}/`) });

  it('takes the first copy the check accepts: 404, 410 and refused copies pass to the next upstream', async () => {
    routes.set('/p-good/img.profile', [200, 'good one']);
    routes.set('/p-bad/img.profile', [200, 'tampered']);
    routes.set('/p-gone/img.profile', [410, '']);
    const up = upstream('p-none', 'p-gone', 'p-bad', 'p-good');
    try {
      const got = await up.fetchProfile('img', check, signal());
      expect(got).toEqual({
        kind: 'found',
        url: `${base}p-good/img.profile`,
        bytes: Buffer.from('good one'),
      });
    } finally {
      await up.close();
    }
  });

  it('none when no upstream has one, refused when every copy fails the check, unavailable when one cannot answer', async () => {
    routes.set('/p-bad/img.profile', [200, 'tampered']);
    routes.set('/p-down/img.profile', [503, '']);
    const cases: [string[], unknown][] = [
      [['p-none', 'p-none2'], { kind: 'none' }],
      [['p-none', 'p-bad'], { kind: 'refused', why: `${base}p-bad/img.profile: tampered is no good` }],
    ];
    for (const [dirs, expected] of cases) {
      const up = upstream(...dirs);
      try {
        expect(await up.fetchProfile('img', check, signal())).toEqual(expected);
      } finally {
        await up.close();
      }
    }
    const down = upstream('p-bad', 'p-down');
    try {
      const e = await down.fetchProfile('img', check, signal()).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(MirrorUnavailableError);
      expect((e as Error).message).toMatch(/HTTP 503.*tampered is no good/);
    } finally {
      await down.close();
    }
  });
});

describe('Upstream.fetchStoreFile', () => {
  it('a copy over maxBytes is refused as malformed and the next upstream asked; none left is unavailable', async () => {
    routes.set('/f-big/versions/img/list', [200, 'far too long']);
    routes.set('/f-ok/versions/img/list', [200, 'fits']);
    const up = new Upstream({}, { urls: [`${base}f-big/`, `${base}f-ok/`] });
    const big = new Upstream({}, { urls: [`${base}f-big/`] });
    try {
      expect((await up.fetchStoreFile('versions/img/list', 4, signal()))?.toString()).toBe('fits');
      const e = await big.fetchStoreFile('versions/img/list', 4, signal()).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(MirrorUnavailableError);
      expect((e as Error).message).toContain(`${base}f-big/versions/img/list: larger than 4 bytes`);
    } finally {
      await up.close();
      await big.close();
    }
  });
});
