import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * A raw NBD client for tests, byte by byte on a real socket: it can follow the
 * protocol (greeting, options, requests) or break it on purpose, which no
 * real client does. The numbers are the protocol's (doc/proto.md of the
 * NetworkBlockDevice project), written out here so the test does not trust the
 * server's own constants.
 */
export const OPTS_MAGIC = 0x49484156454f5054n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_MAGIC = 0x67446698;
export const STRUCTURED_MAGIC = 0x668e33ef;
export const OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  SET_META: 10,
};
export const REP = { ACK: 1, SERVER: 2, INFO: 3, META: 4, ERR_UNSUP: 0x80000001, ERR_INVALID: 0x80000003 };
export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, BLOCK_STATUS: 7 };
export const EPERM = 1;
export const EIO = 5;
export const EINVAL = 22;

export interface Reply {
  readonly structured: boolean;
  readonly error: number;
  readonly cookie: bigint;
  readonly flags: number;
  readonly type: number;
  readonly data: Buffer;
}

export class RawNbd {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  readonly closed: Promise<unknown>;
  private cookie = 0n;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    socket.on('error', () => {});
    // Not events.once: it would reject on the socket's 'error' (EPIPE after the server hung up).
    this.closed = new Promise((r) => socket.once('close', r));
    void this.closed.then(() => {
      this.ended = true;
      this.wake?.();
    });
  }

  /** Connects to a Unix socket path or HOST:PORT, without a word said yet. */
  static async open(where: string | { host: string; port: number }): Promise<RawNbd> {
    const socket = typeof where === 'string' ? connect(where) : connect(where.port, where.host);
    await once(socket, 'connect');
    return new RawNbd(socket);
  }

  /** Opens a connection and does the handshake up to the options: greeting read, flags sent (fixed newstyle, no zeroes). */
  static async haggle(where: string | { host: string; port: number }): Promise<RawNbd> {
    const c = await RawNbd.open(where);
    const g = await c.read(18);
    if (g.toString('latin1', 0, 8) !== 'NBDMAGIC' || g.toString('latin1', 8, 16) !== 'IHAVEOPT') {
      throw new Error(`bad greeting ${g.toString('hex')}`);
    }
    c.write(u32(3));
    return c;
  }

  /** Haggles and goes to transmission on `name`; structured replies and base:allocation unless told otherwise. */
  static async attach(
    where: string | { host: string; port: number },
    name: string,
    options: { structured?: boolean } = {},
  ): Promise<{ c: RawNbd; size: number; flags: number }> {
    const c = await RawNbd.haggle(where);
    if (options.structured !== false) {
      await c.option(OPT.STRUCTURED_REPLY);
      const ctx = Buffer.from('base:allocation');
      await c.option(OPT.SET_META, Buffer.concat([str32(name), u32(1), str32(ctx.toString())]));
    }
    const replies = await c.option(OPT.GO, Buffer.concat([str32(name), u16(0)]));
    const last = replies.at(-1);
    if (last?.type !== REP.ACK) throw new Error(`GO ${name}: reply 0x${last?.type.toString(16)} ${last?.data}`);
    const info = replies.find((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === 0)?.data as Buffer;
    return { c, size: Number(info.readBigUInt64BE(2)), flags: info.readUInt16BE(10) };
  }

  /** Writes, unless the server has already hung up (a hostile test's later bytes go nowhere). */
  write(b: Buffer): void {
    if (this.socket.writable) this.socket.write(b, () => {});
  }

  /** Sends one option and reads its replies up to the final one (ACK or an error). */
  async option(option: number, data = Buffer.alloc(0)): Promise<{ type: number; data: Buffer }[]> {
    this.sendOption(option, data);
    const out: { type: number; data: Buffer }[] = [];
    for (;;) {
      const h = await this.read(20);
      const type = h.readUInt32BE(12);
      const reply = { type, data: await this.read(h.readUInt32BE(16)) };
      out.push(reply);
      if (type === REP.ACK || type >= 0x80000000) return out;
    }
  }

  sendOption(option: number, data = Buffer.alloc(0), length = data.length): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(OPTS_MAGIC, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(length, 12);
    this.write(Buffer.concat([h, data]));
  }

  /** Sends a request; resolves to its cookie. */
  request(
    type: number,
    offset: number | bigint,
    length: number,
    options: { flags?: number; payload?: Buffer; magic?: number } = {},
  ): bigint {
    const h = Buffer.alloc(28);
    const cookie = ++this.cookie;
    h.writeUInt32BE(options.magic ?? REQUEST_MAGIC, 0);
    h.writeUInt16BE(options.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(cookie, 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    this.write(options.payload ? Buffer.concat([h, options.payload]) : h);
    return cookie;
  }

  /**
   * One reply: a simple reply (with `simpleDataLength` bytes of data when it has no error) or one
   * structured chunk. For a structured READ the data is the chunk's payload after its offset.
   */
  async reply(simpleDataLength = 0): Promise<Reply> {
    const magic = (await this.read(4)).readUInt32BE(0);
    if (magic === SIMPLE_MAGIC) {
      const h = await this.read(12);
      const error = h.readUInt32BE(0);
      const data = error ? Buffer.alloc(0) : await this.read(simpleDataLength);
      return { structured: false, error, cookie: h.readBigUInt64BE(4), flags: 1, type: 0, data };
    }
    if (magic !== STRUCTURED_MAGIC) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const h = await this.read(16);
    const type = h.readUInt16BE(2);
    const payload = await this.read(h.readUInt32BE(12));
    const error = type & 0x8000 ? payload.readUInt32BE(0) : 0;
    const data = type === 1 ? payload.subarray(8) : type & 0x8000 ? payload.subarray(6) : payload;
    return { structured: true, error, cookie: h.readBigUInt64BE(4), flags: h.readUInt16BE(0), type, data };
  }

  /** Exactly n bytes; rejects if the server hangs up first. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`connection closed with ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Whether the server closes the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  }

  close(): void {
    this.socket.destroy();
  }
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** A string as options carry it: its 32-bit length, then its bytes. */
export function str32(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([u32(b.length), b]);
}
