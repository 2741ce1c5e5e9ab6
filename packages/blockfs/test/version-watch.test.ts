import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { updateFileText, VersionWatcher } from '../src/version-watch.js';
import { makeImage, patternBytes } from './image-fixtures.js';

/** An index URL that answers with an ETag and 304s, whose content the test swaps. */
async function indexServer(initial: Uint8Array) {
  const state = { bytes: initial, etag: '"v1"', answers: [] as number[], fail: false };
  const server = createServer((req, res) => {
    if (state.fail) {
      state.answers.push(503);
      res.writeHead(503).end();
      return;
    }
    const status = req.headers['if-none-match'] === state.etag ? 304 : 200;
    state.answers.push(status);
    res.writeHead(status, { etag: state.etag });
    res.end(status === 200 ? Buffer.from(state.bytes) : undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/img.idx`;
  return { state, url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const lines: string[] = [];
const logger: Logger = {
  info: (m: string) => void lines.push(`I ${m}`),
  fault: (m: string) => void lines.push(`F ${m}`),
  verbose: () => {},
};
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  lines.length = 0;
  for (const c of closers.splice(0)) await c();
});

describe('VersionWatcher', () => {
  it('revalidates with If-None-Match, reports a new version once, and never throws', async () => {
    const v1 = makeImage([patternBytes(4096, 1)]);
    const v2 = makeImage([patternBytes(4096, 2)]);
    const srv = await indexServer(v1.indexBytes);
    closers.push(srv.close);
    const w = new VersionWatcher(
      { logger },
      { url: srv.url, name: 'img', mounted: v1.decoded.digest, intervalMs: 60_000 },
    );
    const signal = new AbortController().signal;
    await w.check(signal);
    await w.check(signal);
    expect(srv.state.answers).toEqual([200, 304]); // the second check is a revalidation, not a download
    expect(w.status().update).toBeNull();
    expect(updateFileText(w.status())).toBe('');

    srv.state.bytes = v2.indexBytes;
    srv.state.etag = '"v2"';
    await w.check(signal);
    await w.check(signal);
    expect(w.status().update?.digest).toBe(v2.decoded.digest);
    expect(updateFileText(w.status())).toBe(`${v2.decoded.digest} ${v2.decoded.index.header.created}\n`);
    expect(lines.filter((l) => l.includes('newer version of img available'))).toHaveLength(1);

    srv.state.fail = true;
    await w.check(signal);
    await w.check(signal);
    expect(w.status().lastError).toMatch(/503/);
    expect(w.status().update?.digest).toBe(v2.decoded.digest); // a failed check forgets nothing
    expect(lines.filter((l) => l.startsWith('F '))).toHaveLength(1); // one line per distinct failure

    // Rolled back to the mounted version: no update any more.
    srv.state.fail = false;
    srv.state.bytes = v1.indexBytes;
    srv.state.etag = '"v1b"';
    await w.check(signal);
    expect(w.status().update).toBeNull();
  });

  it("starts from the mounted bytes' ETag: its first check is a revalidation, not a second download", async () => {
    const v1 = makeImage([patternBytes(4096, 1)]);
    const srv = await indexServer(v1.indexBytes);
    closers.push(srv.close);
    const w = new VersionWatcher(
      { logger },
      { url: srv.url, name: 'img', mounted: v1.decoded.digest, intervalMs: 60_000, etag: '"v1"' },
    );
    await w.check(new AbortController().signal);
    expect(srv.state.answers).toEqual([304]);
    expect(w.status()).toMatchObject({ update: null, lastError: null });
  });

  it('checks on its interval until aborted', async () => {
    const v1 = makeImage([patternBytes(4096, 1)]);
    const srv = await indexServer(v1.indexBytes);
    closers.push(srv.close);
    const w = new VersionWatcher({ logger }, { url: srv.url, name: 'img', mounted: v1.decoded.digest, intervalMs: 30 });
    const ac = new AbortController();
    w.start(ac.signal);
    await new Promise((r) => setTimeout(r, 250));
    ac.abort();
    // A check already on the wire when the abort came may still reach the server: let it land, then count.
    await new Promise((r) => setTimeout(r, 50));
    const seen = srv.state.answers.length;
    expect(seen).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 150));
    expect(srv.state.answers.length).toBe(seen);
  });
});
