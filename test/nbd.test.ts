import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { CMD, OPT, RawNbd } from './support/nbd-client.js';
import { BIN, ENTRY, node, ROOT, run, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';

/**
 * httpstorged nbd end to end: the daemon serving images fetched from a real
 * HTTP server, read by real NBD clients (libnbd's nbdinfo and nbdcopy,
 * qemu-img) and by a raw socket that breaks the protocol. No FUSE anywhere.
 */
const MiB = 1024 * 1024;
const HIDE_FUSE = join(ROOT, 'test/support/hide-fuse.cjs');
let work: string;
let cleanupWork: () => Promise<void>;
let image: string;
let store: string;
let server: StaticServer;
const daemons: number[] = [];
let n = 0;

/**
 * Starts the daemon in the background (its default mode), through the installed entry (bin.js, which starts
 * the daemon before it parses anything); resolves once it says it is serving. FUSE is
 * hidden from it (and from the daemon it starts): NBD must need none.
 */
async function serve(args: string[], at: { listen?: string[]; socket?: string; cache?: string } = {}) {
  const i = ++n;
  const socket = at.socket ?? join(work, `nbd${i}.sock`);
  const log = join(work, `nbd${i}.log`);
  const cache = at.cache ?? join(work, `cache${i}`);
  const where = at.listen ?? ['--socket', socket];
  const result = await run(
    process.execPath,
    [ENTRY.httpstorged, 'nbd', ...where, '--cache', cache, '--log', log, ...args],
    {
      timeoutMs: 60_000,
      env: { NODE_OPTIONS: `--require ${HIDE_FUSE}` },
    },
  );
  const pid = Number(/daemon pid (\d+)/.exec(result.stdout)?.[1]);
  if (pid) daemons.push(pid);
  return { socket, log, cache, result, pid, uri: (name: string) => `nbd+unix:///${name}?socket=${socket}` };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-nbd-e2e-'));
  image = join(work, 'disk.img');
  // Zero regions at 8-24 MiB and 40-48 MiB: what base:allocation must report as holes.
  await makeImage(image, [
    ['text', 8],
    ['zero', 16],
    ['random', 8],
    ['text', 8],
    ['zero', 8],
  ]);
  store = join(work, 'store');
  const r = await node(BIN.pack, ['pack', image, '--store', store, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const other = join(work, 'other.img');
  await makeImage(other, [['text', 2]]);
  expect((await node(BIN.pack, ['pack', other, '--store', store])).code).toBe(0);
  server = await new StaticServer(store).start();
}, 120_000);

afterEach(() => {
  server.fault = () => undefined;
});

afterAll(async () => {
  for (const pid of daemons) if (alive(pid)) process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && daemons.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
  await server?.kill();
  await cleanupWork?.();
});

describe('httpstorged nbd with real clients', () => {
  it('returns once serving, on a 0600 socket; nbdinfo lists each image as an export of its name', async () => {
    const d = await serve([`${server.url}disk.idx`, `${server.url}other.idx`]);
    expect(d.result.code, d.result.stderr).toBe(0);
    expect(d.result.stdout).toMatch(/serving at/);
    expect((await stat(d.socket)).mode & 0o777).toBe(0o600);
    const r = await run('nbdinfo', ['--list', '--json', d.uri('')], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as {
      exports: {
        'export-name': string;
        'export-size': number;
        is_read_only: boolean;
        can_multi_conn: boolean;
        contexts: string[];
      }[];
    };
    expect(list.exports.map((e) => [e['export-name'], e['export-size'], e.is_read_only, e.can_multi_conn])).toEqual([
      ['disk', 48 * MiB, true, true],
      ['other', 2 * MiB, true, true],
    ]);
    expect(list.exports[0]?.contexts).toContain('base:allocation');
  });

  it('nbdinfo --map shows the zero regions as holes; nbdcopy copies it byte-identical and skips them', async () => {
    const d = await serve([`${server.url}disk.idx`]);
    expect(d.result.code, d.result.stderr).toBe(0);
    const map = await run('nbdinfo', ['--map', '--json', d.uri('disk')], { timeoutMs: 30_000 });
    expect(map.code, map.stderr).toBe(0);
    const extents = (JSON.parse(map.stdout) as { offset: number; length: number; type: number }[]).map((e) => [
      e.offset / MiB,
      e.length / MiB,
      e.type,
    ]);
    expect(extents).toEqual([
      [0, 8, 0],
      [8, 16, 3],
      [24, 16, 0],
      [40, 8, 3],
    ]);
    const out = join(work, 'copy.img');
    const copy = await run('nbdcopy', [d.uri('disk'), out], { timeoutMs: 120_000 });
    expect(copy.code, copy.stderr).toBe(0);
    expect((await run('cmp', [image, out])).code).toBe(0);
    // The holes were skipped, not written: the copy is sparse.
    expect((await stat(out)).blocks * 512).toBeLessThanOrEqual(25 * MiB);

    // httpstorged stats reads the daemon's status over the same socket.
    const json = await node(BIN.httpstorged, ['stats', d.socket, '--json'], { timeoutMs: 30_000 });
    expect(json.code, json.stderr).toBe(0);
    const s = JSON.parse(json.stdout);
    expect([s.pid, s.images[0].name, s.images[0].bytesRead, s.nbd.dropped]).toEqual([d.pid, 'disk', 24 * MiB, 0]);
    expect(s.nbd.requests).toBeGreaterThan(0);
    const text = await node(BIN.httpstorged, ['stats', d.socket], { timeoutMs: 30_000 });
    expect(text.stdout).toMatch(/^nbd: 1 connections .* requests, 24\.0 MiB read, 0 errors$/m);
    const m = await node(BIN.httpstorged, ['measurements', d.socket], { timeoutMs: 30_000 });
    expect(m.stdout).toMatch(/thfc-index sha256:[0-9a-f]{64} disk/);
  });

  it('qemu-img compare finds the export identical; convert -O qcow2 skips the zeros and compares identical', async () => {
    const d = await serve([`${server.url}disk.idx`]);
    const cmpd = await run('qemu-img', ['compare', '-f', 'raw', image, d.uri('disk')], { timeoutMs: 120_000 });
    expect(cmpd.code, cmpd.stdout + cmpd.stderr).toBe(0);
    const qcow2 = join(work, 'disk.qcow2');
    const conv = await run('qemu-img', ['convert', '-O', 'qcow2', d.uri('disk'), qcow2], { timeoutMs: 120_000 });
    expect(conv.code, conv.stderr).toBe(0);
    expect((await run('qemu-img', ['compare', image, qcow2], { timeoutMs: 120_000 })).code).toBe(0);
    // 24 MiB of zeros are not in the qcow2: 24 MiB of data plus metadata.
    expect((await stat(qcow2)).size).toBeLessThan(26 * MiB);
  });

  it('serves TCP only when asked, with --listen; --group shares the socket with a group', async () => {
    const port = await freePort();
    const d = await serve([`${server.url}other.idx`], { listen: ['--listen', `127.0.0.1:${port}`] });
    expect(d.result.code, d.result.stderr).toBe(0);
    const r = await run('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/other`], { timeoutMs: 30_000 });
    expect([r.code, r.stdout.trim()]).toEqual([0, String(2 * MiB)]);
    // nbd-client (the kernel's client; its handshake runs in user space) lists the exports too.
    const list = await run('nbd-client', ['-l', '127.0.0.1', String(port)], { timeoutMs: 30_000 });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^other: thfc image sha256:[0-9a-f]{64}$/m);
    const stats = await node(BIN.httpstorged, ['stats', `127.0.0.1:${port}`, '--json'], { timeoutMs: 30_000 });
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout).pid).toBe(d.pid);
    const grouped = await serve([`${server.url}other.idx`, '--group', 'root']);
    expect(grouped.result.code, grouped.result.stderr).toBe(0);
    const st = await stat(grouped.socket);
    expect([st.mode & 0o777, st.gid]).toEqual([0o660, 0]);
    const noGroup = await node(BIN.httpstorged, [
      'nbd',
      '--socket',
      join(work, 'g.sock'),
      '--group',
      'no-such-group-x',
      `${server.url}other.idx`,
    ]);
    expect([noGroup.code, noGroup.stderr.trim()]).toEqual([2, 'httpstorged: --group: no group named no-such-group-x']);
    const none = await node(BIN.httpstorged, ['nbd', `${server.url}other.idx`], { timeoutMs: 30_000 });
    expect([none.code, none.stderr.trim()]).toEqual([
      2,
      'httpstorged: give one of --socket PATH or --listen HOST:PORT',
    ]);
    // The command starts the daemon before it parses anything (nbdFastStart): the daemon's parse error is still one line.
    const typo = await node(
      ENTRY.httpstorged,
      [
        'nbd',
        '--socket',
        join(work, 't.sock'),
        '--log',
        join(work, 't.log'),
        '--chache',
        'x',
        `${server.url}other.idx`,
      ],
      { timeoutMs: 30_000 },
    );
    expect([typo.code, typo.stderr.trim()]).toEqual([
      2,
      "httpstorged: unknown option '--chache' (Did you mean --cache?) (see httpstorged nbd --help)",
    ]);
  });

  it('--max-clients bounds NBD connections; --max-connections still bounds each mirror, as for a mount', async () => {
    const d = await serve([`${server.url}other.idx`, '--max-clients', '3', '--max-connections', '2']);
    expect(d.result.code, d.result.stderr).toBe(0);
    const open = [];
    for (let i = 0; i < 3; i++) open.push((await RawNbd.attach(d.socket, 'other')).c);
    const over = await RawNbd.open(d.socket);
    expect(await over.closesWithin(2_000)).toBe(true);
    open[0]?.request(CMD.READ, 0, 2 * MiB);
    expect((await open[0]?.reply())?.error).toBe(0);
    for (const x of open) x.close();
    await new Promise((r) => setTimeout(r, 200));
    const s = JSON.parse((await node(BIN.httpstorged, ['stats', d.socket, '--json'])).stdout);
    expect(s.images[0].mirrors[0].window.limit).toBeLessThanOrEqual(2);
  });

  it('the kernel reads the export through nbd-client, byte-identical', async (ctx) => {
    if (!existsSync('/dev/nbd0')) ctx.skip('no /dev/nbd0: the nbd kernel module is not loaded here (modprobe nbd)');
    const port = await freePort();
    const d = await serve([`${server.url}disk.idx`], { listen: ['--listen', `127.0.0.1:${port}`] });
    expect(d.result.code, d.result.stderr).toBe(0);
    const attach = await run('nbd-client', ['-N', 'disk', '127.0.0.1', String(port), '/dev/nbd0', '-readonly'], {
      timeoutMs: 30_000,
    });
    expect(attach.code, attach.stderr).toBe(0);
    try {
      expect((await run('cmp', ['-n', String(48 * MiB), image, '/dev/nbd0'], { timeoutMs: 120_000 })).code).toBe(0);
    } finally {
      await run('nbd-client', ['-d', '/dev/nbd0'], { timeoutMs: 30_000 });
    }
  });

  it('CACHE fetches the range into the cache; --record-profile is written at SIGTERM; stats of a foreign socket is a clear error', async () => {
    const profile = join(work, 'disk.profile');
    const d = await serve([`${server.url}disk.idx`, '--record-profile', profile, '--readahead', '0']);
    expect(d.result.code, d.result.stderr).toBe(0);
    const { c } = await RawNbd.attach(d.socket, 'disk');
    c.request(CMD.CACHE, 0, 4 * MiB);
    expect((await c.reply()).error).toBe(0);
    const s = JSON.parse((await node(BIN.httpstorged, ['stats', d.socket, '--json'])).stdout);
    expect(s.images[0].blocksFetched).toBe(16); // 4 MiB of 256 KiB blocks, fetched without a read
    expect(s.images[0].reads).toBe(0);
    c.request(CMD.READ, 0, MiB);
    expect((await c.reply()).error).toBe(0);
    c.close();
    process.kill(d.pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(d.pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(d.pid)).toBe(false);
    expect((await stat(profile)).size).toBeGreaterThan(0);

    const foreign = createServer((sock) => sock.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const path = join(work, 'foreign.sock');
    await new Promise<void>((r) => foreign.listen(path, r));
    const r = await node(BIN.httpstorged, ['stats', path], { timeoutMs: 30_000 });
    foreign.close();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^httpstorged: .*foreign\.sock is not an httpstorged NBD socket that answers/);
  });

  it('a read whose blocks cannot be had is an error for the client, never wrong bytes', async () => {
    const d = await serve([`${server.url}disk.idx`, '--retries', '1', '--timeout', '1']);
    server.fault = (path) => (path.includes('/blocks/') ? { kind: 'corrupt' } : undefined);
    const copy = await run('nbdcopy', [d.uri('disk'), join(work, 'bad.img')], { timeoutMs: 120_000 });
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toMatch(/Input\/output error/);
    expect(alive(d.pid)).toBe(true);
  });

  it('hostile clients lose their own connection while nbdcopy goes on, and the daemon lives', async () => {
    const d = await serve([`${server.url}disk.idx`]);
    const out = join(work, 'copy2.img');
    const copy = run('nbdcopy', ['--connections', '2', d.uri('disk'), out], { timeoutMs: 120_000 });
    const hostile: RawNbd[] = [];
    for (let i = 0; i < 20; i++) {
      const a = await RawNbd.attach(d.socket, 'disk');
      a.c.request(CMD.READ, 0, 4096, { magic: 0xdeadbeef });
      const b = await RawNbd.attach(d.socket, 'disk');
      b.c.request(CMD.WRITE, 2n ** 62n, 0xffffffff);
      const loop = await RawNbd.haggle(d.socket);
      for (let k = 0; k < 300 && !(await loop.closesWithin(0)); k++) loop.sendOption(OPT.LIST);
      hostile.push(a.c, b.c, loop);
    }
    for (const c of hostile) expect(await c.closesWithin(5_000)).toBe(true);
    const r = await copy;
    expect(r.code, r.stderr).toBe(0);
    expect((await run('cmp', [image, out])).code).toBe(0);
    expect(alive(d.pid)).toBe(true);
  });
});

describe('httpstorged nbd restarts under a reconnecting client', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** qemu-img convert from the export with reconnect-delay, as a guest's qemu would attach it. */
  const convert = (socket: string, out: string) =>
    run(
      'qemu-img',
      [
        'convert',
        '--image-opts',
        `driver=nbd,server.type=unix,server.path=${socket},export=disk,reconnect-delay=30`,
        '-O',
        'raw',
        out,
      ],
      { timeoutMs: 120_000 },
    );
  // A slow mirror, one request at a time: the copy takes seconds, so the restart lands in its middle.
  const slow = () => {
    server.fault = (path) => (path.includes('/blocks/') ? { kind: 'delay', ms: 30 } : undefined);
  };
  const args = () => [`${server.url}disk.idx`, '--connections', '1', '--readahead', '2'];

  it('SIGKILL mid-copy, then a new daemon on the same socket and cache: the copy completes identical', async () => {
    slow();
    const d = await serve(args());
    expect(d.result.code, d.result.stderr).toBe(0);
    const out = join(work, 'killed.raw');
    let done = false;
    const copy = convert(d.socket, out).finally(() => {
      done = true;
    });
    await sleep(1_000);
    expect(done).toBe(false);
    process.kill(d.pid, 'SIGKILL');
    await sleep(300);
    const again = await serve(args(), { socket: d.socket, cache: d.cache });
    expect(again.result.code, again.result.stderr).toBe(0);
    const r = await copy;
    expect(r.code, r.stderr).toBe(0);
    expect((await run('cmp', [image, out])).code).toBe(0);
    const s = JSON.parse((await node(BIN.httpstorged, ['stats', d.socket, '--json'])).stdout);
    expect(s.pid).toBe(again.pid);
    expect(s.images[0].reads).toBeGreaterThan(0); // the new daemon served the rest
  });

  it('SIGHUP: a new daemon takes the socket over, the old one answers what it has and exits; no request fails', async () => {
    slow();
    const d = await serve(args());
    const out = join(work, 'hup.raw');
    let done = false;
    const copy = convert(d.socket, out).finally(() => {
      done = true;
    });
    await sleep(1_000);
    expect(done).toBe(false);
    process.kill(d.pid, 'SIGHUP');
    for (let i = 0; i < 200 && alive(d.pid); i++) await sleep(50);
    expect(alive(d.pid)).toBe(false);
    const r = await copy;
    expect(r.code, r.stderr).toBe(0);
    expect((await run('cmp', [image, out])).code).toBe(0);
    const s = JSON.parse((await node(BIN.httpstorged, ['stats', d.socket, '--json'])).stdout);
    expect(s.pid).not.toBe(d.pid);
    daemons.push(s.pid);
    const log = await readFile(d.log, 'utf8');
    expect(log).toMatch(/SIGHUP: starting a new daemon/);
    expect(log).toMatch(/took .* over; stopping the daemon that served it/);
    expect(log).not.toMatch(/FAULT/);
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}
