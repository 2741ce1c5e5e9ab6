import { connect, type Socket } from 'node:net';
import { InputError } from './errors.js';

/**
 * The read side of the NBD protocol (fixed newstyle handshake, NBD_OPT_GO,
 * simple replies), just enough to read an image through `qemu-nbd` on a unix
 * socket. One request at a time: the packer reads block by block, and the
 * socket is local. Its `read` has FileHandle's signature so the packer reads
 * a qemu image and a raw file the same way.
 */
const NBDMAGIC = 0x4e42444d41474943n;
const IHAVEOPT = 0x49484156454f5054n;
const OPT_REPLY_MAGIC = 0x0003e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const INFO_EXPORT = 0;
const CMD_READ = 0;
const CMD_DISC = 2;
/** Option replies carry a few bytes of info or an error text; more than this is not a qemu-nbd we understand. */
const MAX_OPTION_REPLY = 64 * 1024;

export class NbdClient {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;
  private cookie = 0n;

  private constructor(
    private readonly socket: Socket,
    private readonly what: string,
  ) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.buffered += c.length;
      this.wake();
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(this.failed);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new InputError(`${what}: qemu-nbd closed the connection`)));
  }

  /** Size of the export in bytes, known after `open`. */
  size = 0;

  static async open(socketPath: string, what: string, signal?: AbortSignal): Promise<NbdClient> {
    signal?.throwIfAborted();
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path: socketPath });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const client = new NbdClient(socket, what);
    try {
      await client.handshake();
    } catch (e) {
      socket.destroy();
      throw e;
    }
    return client;
  }

  private async handshake(): Promise<void> {
    const hello = await this.take(18);
    if (hello.readBigUInt64BE(0) !== NBDMAGIC || hello.readBigUInt64BE(8) !== IHAVEOPT) {
      throw this.protocolError('not a newstyle NBD server');
    }
    const flags = hello.readUInt16BE(16);
    if (!(flags & FLAG_FIXED_NEWSTYLE)) throw this.protocolError('the server lacks fixed newstyle negotiation');
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(FLAG_FIXED_NEWSTYLE | (flags & FLAG_NO_ZEROES));
    // NBD_OPT_GO for the default (empty) export name, no info requests.
    const opt = Buffer.alloc(16 + 6);
    opt.writeBigUInt64BE(IHAVEOPT, 0);
    opt.writeUInt32BE(OPT_GO, 8);
    opt.writeUInt32BE(6, 12);
    opt.writeUInt32BE(0, 16);
    opt.writeUInt16BE(0, 20);
    this.socket.write(Buffer.concat([clientFlags, opt]));
    for (;;) {
      const head = await this.take(20);
      if (head.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw this.protocolError('bad option reply');
      const type = head.readUInt32BE(12);
      const length = head.readUInt32BE(16);
      if (length > MAX_OPTION_REPLY) throw this.protocolError(`option reply of ${length} bytes`);
      const data = await this.take(length);
      if (type === REP_ACK) break;
      if (type & 0x80000000) {
        throw new InputError(`${this.what}: qemu-nbd refused the export: ${data.toString('utf8').slice(0, 200)}`);
      }
      if (type === REP_INFO && length >= 12 && data.readUInt16BE(0) === INFO_EXPORT) {
        this.size = Number(data.readBigUInt64BE(2));
      }
    }
  }

  async read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    const n = Math.max(0, Math.min(length, this.size - position));
    if (n === 0) return { bytesRead: 0, buffer };
    const req = Buffer.alloc(28);
    const cookie = ++this.cookie;
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(CMD_READ, 6);
    req.writeBigUInt64BE(cookie, 8);
    req.writeBigUInt64BE(BigInt(position), 16);
    req.writeUInt32BE(n, 24);
    this.socket.write(req);
    const reply = await this.take(16);
    if (reply.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC || reply.readBigUInt64BE(8) !== cookie) {
      throw this.protocolError('bad read reply');
    }
    const error = reply.readUInt32BE(4);
    if (error !== 0) throw new InputError(`${this.what}: read error ${error} at byte ${position}`);
    const data = await this.take(n);
    buffer.set(data, offset);
    return { bytesRead: n, buffer };
  }

  async close(): Promise<void> {
    if (!this.failed && !this.socket.destroyed) {
      const req = Buffer.alloc(28);
      req.writeUInt32BE(REQUEST_MAGIC, 0);
      req.writeUInt16BE(CMD_DISC, 6);
      await new Promise<void>((resolve) => this.socket.end(req, resolve));
    }
    this.socket.destroy();
  }

  private protocolError(why: string): InputError {
    return new InputError(`${this.what}: NBD protocol error: ${why}`);
  }

  /** Resolves with exactly `n` bytes from the socket. */
  private take(n: number): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    if (!w || this.buffered < w.n) return;
    this.waiter = undefined;
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
    this.buffered = all.length - w.n;
    w.resolve(all.subarray(0, w.n));
  }
}
