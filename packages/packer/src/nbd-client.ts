import { connect, type Socket } from 'node:net';
import {
  NBD_CMD,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO,
  NBD_INIT_MAGIC,
  NBD_OPT,
  NBD_OPTS_MAGIC,
  NBD_REP,
  NBD_REP_MAGIC,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
} from '@thfc/format';
import { ConnectionClosedError, SocketReader } from '@thfc/store';
import { InputError } from './errors.js';

/**
 * The read side of the NBD protocol (fixed newstyle handshake, NBD_OPT_GO,
 * simple replies), just enough to read an image through `qemu-nbd` on a unix
 * socket. One request at a time: the packer reads block by block, and the
 * socket is local. Its `read` has FileHandle's signature so the packer reads
 * a qemu image and a raw file the same way.
 */
/** Option replies carry a few bytes of info or an error text; more than this is not a qemu-nbd we understand. */
const MAX_OPTION_REPLY = 64 * 1024;

export class NbdClient {
  private readonly reader: SocketReader;
  private failed = false;
  private cookie = 0n;

  private constructor(
    private readonly socket: Socket,
    private readonly what: string,
  ) {
    this.reader = new SocketReader(socket);
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
    if (hello.readBigUInt64BE(0) !== NBD_INIT_MAGIC || hello.readBigUInt64BE(8) !== NBD_OPTS_MAGIC) {
      throw this.protocolError('not a newstyle NBD server');
    }
    const flags = hello.readUInt16BE(16);
    if (!(flags & NBD_FLAG_FIXED_NEWSTYLE)) throw this.protocolError('the server lacks fixed newstyle negotiation');
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | (flags & NBD_FLAG_NO_ZEROES));
    // NBD_OPT_GO for the default (empty) export name, no info requests.
    const opt = Buffer.alloc(16 + 6);
    opt.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
    opt.writeUInt32BE(NBD_OPT.GO, 8);
    opt.writeUInt32BE(6, 12);
    opt.writeUInt32BE(0, 16);
    opt.writeUInt16BE(0, 20);
    this.socket.write(Buffer.concat([clientFlags, opt]));
    for (;;) {
      const head = await this.take(20);
      if (head.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw this.protocolError('bad option reply');
      const type = head.readUInt32BE(12);
      const length = head.readUInt32BE(16);
      if (length > MAX_OPTION_REPLY) throw this.protocolError(`option reply of ${length} bytes`);
      const data = await this.take(length);
      if (type === NBD_REP.ACK) break;
      if (type & 0x80000000) {
        throw new InputError(`${this.what}: qemu-nbd refused the export: ${data.toString('utf8').slice(0, 200)}`);
      }
      if (type === NBD_REP.INFO && length >= 12 && data.readUInt16BE(0) === NBD_INFO.EXPORT) {
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
    req.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(NBD_CMD.READ, 6);
    req.writeBigUInt64BE(cookie, 8);
    req.writeBigUInt64BE(BigInt(position), 16);
    req.writeUInt32BE(n, 24);
    this.socket.write(req);
    const reply = await this.take(16);
    if (reply.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC || reply.readBigUInt64BE(8) !== cookie) {
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
      req.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
      req.writeUInt16BE(NBD_CMD.DISC, 6);
      await new Promise<void>((resolve) => this.socket.end(req, resolve));
    }
    this.socket.destroy();
  }

  private protocolError(why: string): InputError {
    return new InputError(`${this.what}: NBD protocol error: ${why}`);
  }

  /** Exactly `n` bytes from the socket; a connection that ends first is qemu-nbd's failure. */
  private async take(n: number): Promise<Buffer> {
    try {
      return await this.reader.read(n);
    } catch (e) {
      this.failed = true;
      if (e instanceof ConnectionClosedError) throw new InputError(`${this.what}: qemu-nbd closed the connection`);
      throw e;
    }
  }
}
