import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadIndex } from '@thfc/store';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { BIN, node, ROOT, tempDir } from './support/processes.js';
import { freePort } from './support/redis-server.js';

/**
 * Indexes on the wire end to end (FORMAT.md §9): thfc-pack writes
 * NAME.idx.zst, thfc-mirror serves it as `Content-Encoding: zstd`, the
 * client decodes it and then revalidates its cached copy with a 304; and a
 * plain nginx holding only NAME.idx serves the same index to the same client.
 */
const MIRROR = join(ROOT, 'packages/mirror/dist/cli.js');
let work: string;
let cleanup: () => Promise<void>;
let store: string;
let plain: Buffer;
const children: ChildProcess[] = [];

async function waitFor(url: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    try {
      const r = await request(url);
      await r.body.dump();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`timed out waiting for ${url}`);
}

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir('thfc-index-wire-'));
  const image = join(work, 'disk.img');
  await makeImage(image, [
    ['text', 12],
    ['zero', 2],
    ['random', 2],
  ]);
  store = join(work, 'store');
  const packed = await node(BIN.pack, ['pack', image, '--store', store, '--block-size', '4K', '--name', 'img']);
  expect(packed.code, packed.stderr).toBe(0);
  plain = await readFile(join(store, 'img.idx'));
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await cleanup?.();
});

describe('indexes on the wire', () => {
  it('thfc-mirror sends zstd; the client decodes it, then revalidates with a 304', async () => {
    const port = await freePort();
    children.push(
      spawn(process.execPath, [MIRROR, 'serve', store, '--listen', `127.0.0.1:${port}`, '--no-access-log'], {
        stdio: 'ignore',
      }),
    );
    const base = `http://127.0.0.1:${port}/`;
    await waitFor(`${base}healthz`);
    const r = await request(`${base}img.idx`, { headers: { 'accept-encoding': 'zstd, gzip' } });
    const wire = Buffer.from(await r.body.arrayBuffer());
    expect(r.headers['content-encoding']).toBe('zstd');
    expect(wire.length).toBeLessThan(plain.length * 0.55);

    const cacheDir = join(work, 'cache-mirror');
    const first = await loadIndex(`${base}img.idx`, {}, { cacheDir });
    expect(Buffer.from(first.decoded.bytes)).toEqual(plain);
    const second = await loadIndex(`${base}img.idx`, {}, { cacheDir });
    expect(second.revalidated).toBe(true);
    expect(second.decoded.digest).toBe(first.decoded.digest);
    // The validator rides with the loaded index, for the version check's first revalidation.
    expect(first.etag).toMatch(/^"/);
    expect(second.etag).toBe(first.etag);
  });

  it('nginx with only NAME.idx: the same index, and a 304 on revalidation', async () => {
    const root = join(work, 'static');
    await mkdir(root);
    await copyFile(join(store, 'img.idx'), join(root, 'img.idx'));
    // nginx's workers drop to an unprivileged user when started as root: let them read the files.
    await chmod(work, 0o755);
    await chmod(root, 0o755);
    await chmod(join(root, 'img.idx'), 0o644);
    const port = await freePort();
    const conf = join(work, 'nginx.conf');
    await writeFile(
      conf,
      `daemon off;
pid ${join(work, 'nginx.pid')};
error_log stderr;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${work}/nginx-body;
  proxy_temp_path ${work}/nginx-proxy;
  fastcgi_temp_path ${work}/nginx-fastcgi;
  uwsgi_temp_path ${work}/nginx-uwsgi;
  scgi_temp_path ${work}/nginx-scgi;
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`,
    );
    children.push(spawn('nginx', ['-e', 'stderr', '-c', conf, '-p', work], { stdio: 'ignore' }));
    const base = `http://127.0.0.1:${port}/`;
    await waitFor(`${base}img.idx`);
    const cacheDir = join(work, 'cache-nginx');
    const first = await loadIndex(`${base}img.idx`, {}, { cacheDir });
    expect(Buffer.from(first.decoded.bytes)).toEqual(plain);
    expect(first.revalidated).toBeUndefined();
    const second = await loadIndex(`${base}img.idx`, {}, { cacheDir });
    expect(second.revalidated).toBe(true);
  });
});
