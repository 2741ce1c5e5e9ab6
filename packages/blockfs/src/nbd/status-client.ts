import { connect, type Socket } from 'node:net';
import {
  NBD_CMD,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_INFO,
  NBD_OPT,
  NBD_OPTS_MAGIC,
  NBD_REP,
  NBD_REQUEST_MAGIC,
  UsageError,
} from '@thfc/format';
import { SocketReader } from '@thfc/store';

/** The hidden exports holding the daemon's status, as a mount's MOUNTPOINT/.thfc/ files. */
export const NBD_STATS_EXPORT = '.thfc/stats.json';
export const NBD_MEASUREMENTS_EXPORT = '.thfc/measurements';

/** Where an NBD daemon listens, as `httpstorged stats` is given it: a socket path, or HOST:PORT. */
export type NbdAddress = { readonly path: string } | { readonly host: string; readonly port: number };

/** Most bytes a status export may have: far above any stats.json, a bound on what a foreign server could send. */
const MAX_STATUS_BYTES = 16 * 1024 * 1024;

/**
 * Reads one export of an NBD server whole, as a minimal client: the
 * daemon's status files (`.thfc/stats.json`) reach `httpstorged stats` this
 * way, over the socket its clients use, so there is no second channel to
 * secure. Rejects with a UsageError when nothing answers or it is not ours.
 */
export async function readNbdExport(where: NbdAddress, name: string, signal: AbortSignal): Promise<Buffer> {
  const text = 'path' in where ? where.path : `${where.host}:${where.port}`;
  const socket: Socket = 'path' in where ? connect(where.path) : connect(where.port, where.host);
  const reader = new SocketReader(socket);
  const stop = () => socket.destroy();
  signal.addEventListener('abort', stop, { once: true });
  try {
    const greeting = await reader.read(18);
    if (greeting.readBigUInt64BE(8) !== NBD_OPTS_MAGIC) throw new Error('not a newstyle NBD server');
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    const nameBytes = Buffer.from(name, 'utf8');
    const option = Buffer.alloc(16 + 4 + nameBytes.length + 2);
    option.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
    option.writeUInt32BE(NBD_OPT.GO, 8);
    option.writeUInt32BE(4 + nameBytes.length + 2, 12);
    option.writeUInt32BE(nameBytes.length, 16);
    nameBytes.copy(option, 20);
    socket.write(Buffer.concat([flags, option]));
    let size: number | undefined;
    for (;;) {
      const h = await reader.read(20);
      const type = h.readUInt32BE(12);
      const data = await reader.read(h.readUInt32BE(16));
      if (type === NBD_REP.ACK) break;
      if (type >= 0x80000000)
        throw new Error(`no export ${name}: ${data.toString('utf8') || `reply 0x${type.toString(16)}`}`);
      if (type === NBD_REP.INFO && data.readUInt16BE(0) === NBD_INFO.EXPORT) size = Number(data.readBigUInt64BE(2));
    }
    if (size === undefined || size > MAX_STATUS_BYTES) throw new Error(`export ${name} has no usable size`);
    const request = Buffer.alloc(56);
    request.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
    request.writeUInt16BE(NBD_CMD.READ, 6);
    request.writeUInt32BE(size, 24);
    request.writeUInt32BE(NBD_REQUEST_MAGIC, 28);
    request.writeUInt16BE(NBD_CMD.DISC, 34);
    socket.write(size ? request : request.subarray(28));
    if (!size) return Buffer.alloc(0);
    const reply = await reader.read(16);
    if (reply.readUInt32BE(4) !== 0) throw new Error(`reading ${name} failed with errno ${reply.readUInt32BE(4)}`);
    return await reader.read(size);
  } catch (e) {
    throw new UsageError(`${text} is not an httpstorged NBD socket that answers (${(e as Error).message})`);
  } finally {
    signal.removeEventListener('abort', stop);
    socket.destroy();
  }
}
