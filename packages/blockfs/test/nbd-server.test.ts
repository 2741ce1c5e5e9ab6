import { stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { MemoryLogger } from '@thfc/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CMD, EINVAL, EIO, EPERM, OPT, RawNbd, REP, str32, u16, u32 } from '../../../test/support/nbd-client.js';
import type { ExportCatalog } from '../src/nbd/negotiation.js';
import { NbdServer, type NbdServerOptions } from '../src/nbd/server.js';
import type { NbdExport } from '../src/nbd/session.js';
import { patternBytes, tempDir } from './image-fixtures.js';

/**
 * The NBD server over a real Unix socket, driven by a raw client that can
 * follow the protocol or break it. The export is an in-memory image of 16
 * blocks of 4 KiB, blocks 4-7 zero; reads of a `failAt` offset fail.
 */
const BS = 4096;
const data = Buffer.concat(
  Array.from({ length: 16 }, (_, i) => (i >= 4 && i < 8 ? Buffer.alloc(BS) : Buffer.from(patternBytes(BS, i)))),
);

let dir: string;
let cleanup: () => Promise<void>;
let server: NbdServer | undefined;
let logger: MemoryLogger;
const clients: RawNbd[] = [];
const delays = new Map<number, number>();
const cached: [number, number][] = [];

function memoryExport(name: string): NbdExport {
  return {
    name,
    size: data.length,
    blockSize: BS,
    preferredBlockSize: BS,
    isZero: (i) => i >= 4 && i < 8,
    connect: () => ({
      async read(buf, offset) {
        const ms = delays.get(offset);
        if (ms) await new Promise((r) => setTimeout(r, ms));
        if (offset === 3 * BS) throw new Error('the mirror is gone');
        data.copy(buf, 0, offset, offset + buf.length);
      },
      async cache(offset, length) {
        cached.push([offset, length]);
      },
    }),
  };
}

const exports = [memoryExport('disk'), memoryExport('other')];
const catalog: ExportCatalog<NbdExport> = {
  find: (n) => (n === '' ? exports[0] : exports.find((e) => e.name === n)),
  list: () => exports,
};

async function start(options: Partial<NbdServerOptions> = {}): Promise<string> {
  const path = join(dir, 'nbd.sock');
  server = new NbdServer({ catalog, logger }, { listen: { kind: 'unix', path }, ...options });
  await server.listen();
  return path;
}

async function attach(path: string, structured = true) {
  const a = await RawNbd.attach(path, 'disk', { structured });
  clients.push(a.c);
  return a;
}

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('thfc-nbd-'));
  logger = new MemoryLogger();
  delays.clear();
  cached.length = 0;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
  server = undefined;
  await cleanup();
});

describe('NbdServer: the protocol', () => {
  it('reads with structured and with simple replies, the bytes of the export', async () => {
    const path = await start();
    const { c, size, flags } = await attach(path);
    expect(size).toBe(data.length);
    expect(flags & 0b10).toBe(0b10); // read-only
    const cookie = c.request(CMD.READ, BS + 100, 3 * BS);
    const r = await c.reply();
    expect([r.cookie, r.structured, r.error, r.flags & 1]).toEqual([cookie, true, 0, 1]);
    expect(r.data.equals(data.subarray(BS + 100, 4 * BS + 100))).toBe(true);

    const { c: s } = await attach(path, false);
    s.request(CMD.READ, 8 * BS, 2 * BS);
    const sr = await s.reply(2 * BS);
    expect([sr.structured, sr.error]).toEqual([false, 0]);
    expect(sr.data.equals(data.subarray(8 * BS, 10 * BS))).toBe(true);
  });

  it('answers concurrent requests as each is done, not in order', async () => {
    const path = await start();
    const { c } = await attach(path);
    delays.set(0, 200);
    const slow = c.request(CMD.READ, 0, BS);
    const fast = c.request(CMD.READ, BS, BS);
    expect((await c.reply()).cookie).toBe(fast);
    expect((await c.reply()).cookie).toBe(slow);
  });

  it('reports zero blocks as hole|zero through base:allocation, one extent with REQ_ONE', async () => {
    const path = await start();
    const { c } = await attach(path);
    c.request(CMD.BLOCK_STATUS, 2 * BS, 8 * BS);
    const r = await c.reply();
    expect(r.type).toBe(5);
    const extents = [];
    for (let o = 4; o < r.data.length; o += 8) extents.push([r.data.readUInt32BE(o), r.data.readUInt32BE(o + 4)]);
    expect(extents).toEqual([
      [2 * BS, 0],
      [4 * BS, 3],
      [2 * BS, 0],
    ]);
    c.request(CMD.BLOCK_STATUS, 5 * BS, 8 * BS, { flags: 8 });
    expect((await c.reply()).data.length).toBe(4 + 8);
  });

  it('lists exports, answers INFO, and refuses unknown options and exports without hanging up', async () => {
    const path = await start();
    const c = await RawNbd.haggle(path);
    clients.push(c);
    const list = await c.option(OPT.LIST);
    expect(
      list.filter((r) => r.type === REP.SERVER).map((r) => r.data.toString('utf8', 4, 4 + r.data.readUInt32BE(0))),
    ).toEqual(['disk', 'other']);
    expect((await c.option(OPT.STARTTLS)).at(-1)?.type).toBe(REP.ERR_UNSUP);
    expect((await c.option(99)).at(-1)?.type).toBe(REP.ERR_UNSUP);
    expect((await c.option(OPT.INFO, Buffer.concat([str32('nope'), u16(0)]))).at(-1)?.type).toBe(0x80000006);
    expect((await c.option(OPT.INFO, Buffer.from([0, 0]))).at(-1)?.type).toBe(REP.ERR_INVALID);
    expect((await c.option(OPT.INFO, Buffer.concat([str32('other'), u16(0)]))).at(-1)?.type).toBe(REP.ACK);
    expect((await c.option(OPT.ABORT)).at(-1)?.type).toBe(REP.ACK);
    expect(await c.closesWithin(2_000)).toBe(true);
  });

  it('enters transmission with NBD_OPT_EXPORT_NAME, and hangs up on an unknown name', async () => {
    const path = await start();
    const c = await RawNbd.haggle(path);
    clients.push(c);
    c.sendOption(OPT.EXPORT_NAME, Buffer.from('other'));
    const info = await c.read(10); // size and flags; no zeroes (NO_ZEROES was negotiated)
    expect(Number(info.readBigUInt64BE(0))).toBe(data.length);
    c.request(CMD.READ, 0, 16);
    expect((await c.reply(16)).data.equals(data.subarray(0, 16))).toBe(true);

    const bad = await RawNbd.haggle(path);
    clients.push(bad);
    bad.sendOption(OPT.EXPORT_NAME, Buffer.from('nope'));
    expect(await bad.closesWithin(2_000)).toBe(true);
  });

  it('CACHE prefetches the range; FLUSH succeeds; DISC closes after the replies', async () => {
    const path = await start();
    const { c } = await attach(path);
    c.request(CMD.CACHE, BS, 5 * BS);
    expect((await c.reply()).error).toBe(0);
    expect(cached).toEqual([[BS, 5 * BS]]);
    c.request(CMD.FLUSH, 0, 0);
    expect((await c.reply()).error).toBe(0);
    delays.set(0, 100);
    c.request(CMD.READ, 0, BS);
    c.request(CMD.DISC, 0, 0);
    expect((await c.reply()).error).toBe(0); // the read in flight is still answered
    expect(await c.closesWithin(2_000)).toBe(true);
  });
});

describe('NbdServer: bad clients', () => {
  it('a write is refused with EPERM, its payload consumed, and the connection goes on', async () => {
    const path = await start();
    for (const structured of [true, false]) {
      const { c } = await attach(path, structured);
      c.request(CMD.WRITE, 0, 1000, { payload: Buffer.alloc(1000, 7) });
      expect((await c.reply()).error).toBe(EPERM);
      c.request(CMD.TRIM, 0, BS);
      expect((await c.reply()).error).toBe(EPERM);
      c.request(CMD.READ, 0, 8);
      expect((await c.reply(8)).data.equals(data.subarray(0, 8))).toBe(true);
    }
  });

  it('ranges past the end, reads past the limit, unknown commands and flags get EINVAL', async () => {
    const path = await start({ maxRequestBytes: 8 * BS });
    const { c } = await attach(path);
    const cases: [number, number | bigint, number, number?][] = [
      [CMD.READ, data.length - 10, 20],
      [CMD.READ, 2n ** 63n, 1],
      [CMD.READ, 0, 9 * BS],
      [CMD.BLOCK_STATUS, 0, 0],
      [CMD.CACHE, data.length, 1],
      [42, 0, 1],
      [CMD.READ, 0, 1, 1 << 5],
    ];
    for (const [type, offset, length, flags] of cases) {
      c.request(type, offset, length, { flags });
      expect((await c.reply()).error, `${type} ${offset} ${length}`).toBe(EINVAL);
    }
    c.request(CMD.READ, 0, 8 * BS);
    expect((await c.reply()).error).toBe(0);
  });

  it('BLOCK_STATUS without a selected context is EINVAL', async () => {
    const path = await start();
    const c = await RawNbd.haggle(path);
    clients.push(c);
    await c.option(OPT.STRUCTURED_REPLY);
    await c.option(OPT.GO, Buffer.concat([str32('disk'), u16(0)]));
    c.request(CMD.BLOCK_STATUS, 0, BS);
    expect((await c.reply()).error).toBe(EINVAL);
  });

  it('a read that fails is EIO with the reason, and the connection goes on', async () => {
    const path = await start();
    const { c } = await attach(path);
    c.request(CMD.READ, 3 * BS, BS);
    const r = await c.reply();
    expect([r.error, r.data.toString()]).toEqual([EIO, 'the mirror is gone']);
    const { c: s } = await attach(path, false);
    s.request(CMD.READ, 3 * BS, BS);
    expect((await s.reply()).error).toBe(EIO);
    s.request(CMD.READ, 0, 4);
    expect((await s.reply(4)).error).toBe(0);
  });

  const hostile: [string, (c: RawNbd) => void][] = [
    ['a bad request magic', (c) => c.request(CMD.READ, 0, BS, { magic: 0x12345678 })],
    ['a write payload past the limit', (c) => c.request(CMD.WRITE, 0, 0xffffffff)],
  ];
  for (const [what, act] of hostile) {
    it(`${what} loses that connection only`, async () => {
      const path = await start();
      const { c: good } = await attach(path);
      const { c: bad } = await attach(path);
      act(bad);
      expect(await bad.closesWithin(2_000)).toBe(true);
      good.request(CMD.READ, 0, 4);
      expect((await good.reply()).data.equals(data.subarray(0, 4))).toBe(true);
      expect(server?.counters.dropped).toBe(1);
    });
  }

  it('bad handshakes lose the connection: unknown client flags, a bad option magic, a huge option, an endless option loop, silence', async () => {
    const path = await start({ maxOptions: 20, handshakeTimeoutMs: 300 });
    const flags = await RawNbd.open(path);
    await flags.read(18);
    flags.write(u32(0x80));
    const magic = await RawNbd.haggle(path);
    magic.write(Buffer.alloc(16, 1));
    const huge = await RawNbd.haggle(path);
    huge.sendOption(OPT.LIST, Buffer.alloc(0), 0xfffffff0);
    const loop = await RawNbd.haggle(path);
    let answered = 0;
    const looping = (async () => {
      for (;;) {
        await loop.option(OPT.LIST);
        answered++;
      }
    })().catch(() => {});
    const silent = await RawNbd.open(path);
    clients.push(flags, magic, huge, loop, silent);
    for (const c of [flags, magic, huge, loop, silent]) expect(await c.closesWithin(3_000)).toBe(true);
    await looping;
    expect(answered).toBe(20);
    const { c } = await attach(path);
    c.request(CMD.READ, 0, 4);
    expect((await c.reply()).error).toBe(0);
  });

  it('connections past the limit are closed at once; the others are served', async () => {
    const path = await start({ maxConnections: 2 });
    const { c: a } = await attach(path);
    await attach(path);
    const third = await RawNbd.open(path);
    clients.push(third);
    expect(await third.closesWithin(2_000)).toBe(true);
    a.request(CMD.READ, 0, 4);
    expect((await a.reply()).error).toBe(0);
  });
});

describe('NbdServer: the socket file', () => {
  it('is 0600 (0660 with a group), replaces a dead socket, refuses a live one or a file, and is removed at close', async () => {
    const path = join(dir, 'nbd.sock');
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(path, r));
    // A daemon killed with SIGKILL leaves its socket behind: close the listener without unlinking the file.
    await new Promise<void>((r) => {
      (dead as unknown as { _handle: { close(cb: () => void): void } })._handle.close(r);
    });
    await start();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const other = new NbdServer({ catalog }, { listen: { kind: 'unix', path } });
    await expect(other.listen()).rejects.toThrow(/another server is listening/);
    await server?.close();
    server = undefined;
    await expect(stat(path)).rejects.toThrow();

    const gid = (await stat(dir)).gid;
    server = new NbdServer({ catalog }, { listen: { kind: 'unix', path, gid } });
    await server.listen();
    expect((await stat(path)).mode & 0o777).toBe(0o660);
    await server.close();
    server = undefined;

    const file = join(dir, 'file');
    await writeFile(file, 'x');
    await expect(new NbdServer({ catalog }, { listen: { kind: 'unix', path: file } }).listen()).rejects.toThrow(
      /not a socket/,
    );
  });
});

describe('NbdServer: stopping', () => {
  it('answers the requests in flight, takes no new one, then closes each connection', async () => {
    const path = await start();
    const { c } = await attach(path);
    delays.set(0, 300);
    const slow = c.request(CMD.READ, 0, BS);
    await new Promise((r) => setTimeout(r, 50));
    const closing = server?.close();
    server = undefined;
    c.request(CMD.READ, BS, BS); // sent after the stop: never answered
    const r = await c.reply();
    expect([r.cookie, r.error]).toEqual([slow, 0]);
    expect(r.data.equals(data.subarray(0, BS))).toBe(true);
    expect(await c.closesWithin(2_000)).toBe(true);
    await closing;
    await expect(stat(path)).rejects.toThrow();
  });
});

describe('NbdServer: a client that stops reading', () => {
  it('is no longer read from while its replies back up, and its session ends when it hangs up', async () => {
    const path = await start();
    const { c } = await attach(path);
    // 400 reads of 16 blocks and not one reply read: the socket's buffers fill, and the server stops taking requests.
    for (let i = 0; i < 400; i++) c.request(CMD.READ, 0, 16 * BS);
    await new Promise((r) => setTimeout(r, 300));
    const taken = server?.counters.requests ?? 0;
    expect(taken).toBeLessThan(400);
    c.close();
    for (let i = 0; i < 40 && server?.counters.connections; i++) await new Promise((r) => setTimeout(r, 50));
    expect(server?.counters.connections).toBe(0);
  });
});
