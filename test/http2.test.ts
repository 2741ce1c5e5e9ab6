import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { BIN, execFileP, node, run, sha256, tempDir } from './support/processes.js';

/**
 * `--http2`: an https mirror that speaks HTTP/2 (a real TLS server on
 * loopback with a certificate made for the test, trusted through
 * NODE_EXTRA_CA_CERTS as a user would) carries every block request of the
 * mount as a stream of one connection, and the image reads back right.
 */
let work: string;
let cleanup: () => Promise<void>;
let image: string;
let server: Http2SecureServer;
let url: string;
let ca: string;
const seen = { versions: new Set<string>(), sessions: 0, requests: 0 };

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir('thfc-h2-'));
  image = join(work, 'h2.img');
  await makeImage(image, [
    ['text', 8],
    ['zero', 4],
    ['random', 4],
  ]);
  const store = join(work, 'store');
  const packed = await node(BIN.pack, ['pack', image, '--store', store]);
  expect(packed.code, packed.stderr).toBe(0);
  const key = join(work, 'key.pem');
  ca = join(work, 'cert.pem');
  await execFileP('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    ca,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  server = createSecureServer({ key: await readFile(key), cert: await readFile(ca), allowHTTP1: true });
  server.on('session', () => seen.sessions++);
  server.on('request', (req, res) => {
    seen.versions.add(req.httpVersion);
    seen.requests++;
    const path = normalize(join(store, decodeURIComponent(new URL(req.url, 'https://x').pathname)));
    if (!path.startsWith(store)) return void res.writeHead(403).end();
    stat(path).then(
      (st) => {
        res.writeHead(200, { 'content-length': st.size });
        createReadStream(path).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}, 120_000);

afterAll(async () => {
  server?.close();
  await cleanup?.();
});

describe('httpstorged --http2', () => {
  it('fetches every block of an https mirror as HTTP/2 streams of one connection, and the image reads right', async () => {
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const log = join(work, 'log');
    const env = { NODE_EXTRA_CA_CERTS: ca };
    const mounted = await run(
      process.execPath,
      [BIN.httpstorged, mnt, `${url}h2.idx`, '--http2', '--cache', join(work, 'cache'), '--log', log],
      { env, timeoutMs: 60_000 },
    );
    expect(mounted.code, mounted.stderr + (await readFile(log, 'utf8').catch(() => ''))).toBe(0);
    try {
      const sessionsBefore = seen.sessions; // the index came over its own connection
      expect(await sha256(join(mnt, 'h2'))).toBe(await sha256(image));
      expect(seen.versions.has('2.0')).toBe(true);
      expect(seen.sessions - sessionsBefore).toBeLessThanOrEqual(1);
      expect(seen.requests).toBeGreaterThan(10);
    } finally {
      await run(process.execPath, [BIN.httpstorged, 'umount', mnt], { timeoutMs: 20_000 });
      await execFileP('fusermount', ['-u', '-z', mnt]).catch(() => {});
    }
  });
});
