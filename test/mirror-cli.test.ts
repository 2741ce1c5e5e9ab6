import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decodeIndex, encodeProfile } from '@thfc/format';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { BIN, node, ROOT, tempDir } from './support/processes.js';
import { freePort } from './support/redis-server.js';

/**
 * thfc-mirror end to end, as an operator runs it: `serve` a packed store,
 * `sync` it into another (killed half-way and resumed), pull-through, and
 * the exit codes scripts rely on. All traffic stays on 127.0.0.1.
 */
const MIRROR = join(ROOT, 'packages/mirror/dist/cli.js');

let work: string;
let cleanupWork: () => Promise<void>;
let store: string;
let serverUrl: string;
let serverProc: ReturnType<typeof spawn>;
let slow: Server;
let slowUrl: string;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function status(url: string): Promise<number> {
  const r = await request(url);
  await r.body.dump();
  return r.statusCode;
}

async function blockCount(dir: string): Promise<number> {
  let n = 0;
  for (const shard of await readdir(join(dir, 'blocks')).catch(() => [])) {
    n += (await readdir(join(dir, 'blocks', shard)).catch(() => [])).filter((f) => !f.startsWith('.')).length;
  }
  return n;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-mirror-cli-'));
  const image = join(work, 'disk.img');
  await makeImage(image, [
    ['text', 6],
    ['zero', 2],
    ['random', 2],
  ]);
  store = join(work, 'store');
  const packed = await node(BIN.pack, ['pack', image, '--store', store, '--block-size', '4K']);
  expect(packed.code, packed.stderr).toBe(0);

  const port = await freePort();
  serverUrl = `http://127.0.0.1:${port}/`;
  serverProc = spawn(process.execPath, [MIRROR, 'serve', store, '--listen', `127.0.0.1:${port}`, '--no-access-log'], {
    stdio: 'ignore',
  });
  await waitFor('thfc-mirror serve', async () => (await status(`${serverUrl}healthz`)) === 200);

  // A slow window onto the mirror, so a sync takes seconds and can be killed half-way.
  slow = createServer(async (req, res) => {
    await new Promise((r) => setTimeout(r, 4));
    try {
      const r = await request(`${serverUrl}${(req.url ?? '/').slice(1)}`);
      res.writeHead(r.statusCode, { 'content-length': r.headers['content-length'] as string });
      for await (const c of r.body) res.write(c);
      res.end();
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
}, 120_000);

afterAll(async () => {
  serverProc?.kill('SIGTERM');
  await new Promise<void>((r) => (slow ? slow.close(() => r()) : r()));
  await cleanupWork?.();
});

describe('thfc-mirror CLI', () => {
  it('sync killed half-way (SIGKILL) leaves no index; run again, it completes and thfc-pack verify passes', async () => {
    const local = join(work, 'killed');
    const child = spawn(process.execPath, [MIRROR, 'sync', slowUrl, '--store', local, '--connections', '2'], {
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('some blocks synced', async () => (await blockCount(local)) >= 50);
    child.kill('SIGKILL');
    await exited;
    const kept = await blockCount(local);
    expect(await exists(join(local, 'disk.idx'))).toBe(false);

    const resumed = await node(MIRROR, ['sync', serverUrl, '--store', local, '--json'], { timeoutMs: 60_000 });
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout);
    expect(report.indexes[0].name).toBe('disk');
    expect(report.indexes[0].present).toBeGreaterThanOrEqual(kept);
    expect(report.indexes[0].fetched).toBe(report.indexes[0].blocks - report.indexes[0].present);

    const verify = await node(BIN.pack, ['verify', local], { timeoutMs: 60_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^ok: 1 indexes/m);
  }, 120_000);

  it('sync stopped by SIGINT exits 130 with a resume hint, and keeps what it fetched', async () => {
    const local = join(work, 'interrupted');
    const child = spawn(process.execPath, [MIRROR, 'sync', slowUrl, '--store', local, '--connections', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (c) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await waitFor('some blocks synced', async () => (await blockCount(local)) >= 20);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/^thfc-mirror: sync interrupted: \d+ block\(s\).*run the same command again to resume\n$/m);
    expect(await exists(join(local, 'disk.idx'))).toBe(false);
    expect(await blockCount(local)).toBeGreaterThanOrEqual(20);
  }, 60_000);

  it('serve --upstream pulls through what it lacks', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const pt = spawn(
      process.execPath,
      [MIRROR, 'serve', join(work, 'pt'), '--listen', `127.0.0.1:${port}`, '--upstream', serverUrl],
      { stdio: 'ignore' },
    );
    try {
      await waitFor('pull-through mirror', async () => (await status(`${url}healthz`)) === 200);
      expect(await status(`${url}disk.idx`)).toBe(200);
      const listing = JSON.parse(await (await request(`${url}index.json`)).body.text());
      expect(listing.indexes.map((i: { name: string }) => i.name)).toEqual(['disk']);
      const sync = await node(MIRROR, ['sync', url, 'disk', '--store', join(work, 'via-pt')], { timeoutMs: 60_000 });
      expect(sync.code, sync.stderr).toBe(0);
      expect(await blockCount(join(work, 'pt'))).toBe(await blockCount(join(work, 'via-pt')));
    } finally {
      pt.kill('SIGTERM');
    }
  }, 60_000);

  it('sync copies a boot profile published with thfc-pack profile add, and says so in its summary', async () => {
    const index = decodeIndex(await readFile(join(store, 'disk.idx')));
    const recorded = join(work, 'disk.recorded');
    await writeFile(recorded, encodeProfile('disk', index.digest, [...index.index.uniqueRefs().keys()].slice(0, 3)));
    const add = await node(BIN.pack, ['profile', 'add', join(store, 'disk.idx'), recorded]);
    expect(add.code, add.stderr).toBe(0);
    const local = join(work, 'with-profile');
    const sync = await node(MIRROR, ['sync', serverUrl, '--store', local], { timeoutMs: 60_000 });
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toMatch(/^ {2}disk: updated, .*\), profile updated$/m);
    expect(await readFile(join(local, 'disk.profile'))).toEqual(await readFile(join(store, 'disk.profile')));
  }, 60_000);

  it('serves a published boot profile beside its index', async () => {
    await writeFile(join(store, 'disk.profile'), 'thfc-profile 1\n');
    const r = await request(`${serverUrl}disk.profile`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(await r.body.text()).toBe('thfc-profile 1\n');
  });

  it('proxy: a WAN link in front of serve (latency, ranges), a JSON summary at SIGTERM, bad --inject exits 2', async () => {
    const port = await freePort();
    const proxy = spawn(
      process.execPath,
      [MIRROR, 'proxy', serverUrl, '--listen', `127.0.0.1:${port}`, '--inject', 'latency=100ms', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    proxy.stdout?.on('data', (c) => {
      stdout += c;
    });
    proxy.stderr?.on('data', (c) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((r) => proxy.on('close', (code) => r(code)));
    try {
      const url = `http://127.0.0.1:${port}/`;
      await waitFor('thfc-mirror proxy', async () => /injecting latency=100ms/.test(stderr));
      const t = performance.now();
      const idx = await request(`${url}disk.idx`);
      const bytes = Buffer.from(await idx.body.arrayBuffer());
      expect(performance.now() - t).toBeGreaterThanOrEqual(95);
      expect(idx.statusCode).toBe(200);
      expect(bytes.equals(await readFile(join(store, 'disk.idx')))).toBe(true);
      const part = await request(`${url}disk.idx`, { headers: { range: 'bytes=0-9' } });
      expect(part.statusCode).toBe(206);
      expect(await part.body.text()).toBe(bytes.subarray(0, 10).toString());
    } finally {
      proxy.kill('SIGTERM');
    }
    expect(await exited).toBe(130);
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ upstream: serverUrl, inject: 'latency=100ms', requests: 2, errors: 0, resets: 0 });
    expect(stderr).toMatch(/^thfc-mirror: stopped proxy http:\/\/127\.0\.0\.1:\d+\/ after 2 requests/m);
    const bad = await node(MIRROR, ['proxy', serverUrl, '--inject', 'latency=soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^thfc-mirror: --inject latency=soon: expected a duration/);
  }, 60_000);

  it('maps failures to one line and the shared exit codes', async () => {
    const dead = await node(MIRROR, ['sync', 'http://127.0.0.1:9/', '--store', join(work, 'x')], {
      timeoutMs: 30_000,
    });
    expect(dead.code).toBe(5);
    expect(dead.stderr).toMatch(/^thfc-mirror: .*127\.0\.0\.1:9.*\n$/);
    const badName = await node(MIRROR, ['sync', serverUrl, '../etc', '--store', join(work, 'x')]);
    expect(badName.code).toBe(2);
    const noIndex = await node(MIRROR, ['sync', serverUrl, 'nope', '--store', join(work, 'x')]);
    expect(noIndex.code).toBe(3);
    expect(noIndex.stderr).toMatch(/no such index/);
    const noStore = await node(MIRROR, ['serve', join(work, 'missing'), '--listen', '127.0.0.1:0']);
    expect(noStore.code).toBe(3);
    expect(noStore.stderr).toMatch(/^thfc-mirror: store .*missing: no such file or directory\n$/);
    const badFlag = await node(MIRROR, ['serve', store, '--max-inflight', 'lots']);
    expect(badFlag.code).toBe(2);
  }, 60_000);
});
