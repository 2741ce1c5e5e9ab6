import type { Socket } from 'node:net';
import {
  NBD_CMD,
  NBD_CMD_FLAG,
  NBD_E,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INIT_MAGIC,
  NBD_OPTS_MAGIC,
} from '@thfc/format';
import { ConnectionClosedError, type Logger, SILENT_LOGGER, SocketReader } from '@thfc/store';
import { allocationExtents, type BlockMap } from './allocation.js';
import { BufferPool } from './buffer-pool.js';
import { answerOption, type ExportCatalog, type ExportInfo, newNegotiation } from './negotiation.js';
import { blockStatusChunk, doneChunk, errorChunk, offsetDataHeader, simpleReply } from './reply.js';
import {
  checkRequest,
  hasPayload,
  type NbdRequest,
  NbdStreamError,
  parseRequest,
  REQUEST_HEADER_BYTES,
} from './request.js';

/** One export as a session serves it. */
export interface NbdExport extends ExportInfo, BlockMap {
  /** A connection's view: its reads form one stream (for read-ahead). */
  connect(): ExportConnection;
}

export interface ExportConnection {
  /** Fills buf (length bytes, in range) from `offset`; rejects if any byte cannot be had (never wrong bytes). */
  read(buf: Buffer, offset: number, signal: AbortSignal): Promise<void>;
  /** Fetches the blocks of [offset, offset + length) into the cache; rejects if one could not be fetched. */
  cache(offset: number, length: number, signal: AbortSignal): Promise<void>;
}

/** Counters over every session of a server (`httpstorged stats`). */
export interface NbdCounters {
  connections: number;
  connectionsTotal: number;
  /** Connections dropped for breaking the protocol or the limits. */
  dropped: number;
  requests: number;
  bytesRead: number;
  /** Requests answered with an error (refused, or a read that failed). */
  errors: number;
}

export function newNbdCounters(): NbdCounters {
  return { connections: 0, connectionsTotal: 0, dropped: 0, requests: 0, bytesRead: 0, errors: 0 };
}

export interface NbdSessionOptions {
  /** The largest READ (and refused WRITE payload) accepted. */
  readonly maxRequestBytes?: number | undefined;
  /** Options after which a client that has not started transmission is cut off. */
  readonly maxOptions?: number | undefined;
  /** Time a client has from connecting to starting transmission. */
  readonly handshakeTimeoutMs?: number | undefined;
  /** Read bytes in flight per connection before the session stops taking requests. */
  readonly maxInflightBytes?: number | undefined;
}

/**
 * 32 MiB: what nbdkit and qemu accept as a maximum, far above what clients
 * send (qemu 2 MiB, nbdcopy 256 KiB - 32 MiB), and small enough that a
 * connection's in-flight reads cannot take the daemon's memory.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/**
 * nbdinfo --list asks a handful of options per export; a client still
 * haggling after 256 is looping, and loses its connection.
 */
export const DEFAULT_MAX_OPTIONS = 256;
/** A client that connects and says nothing holds a socket: 30 s to reach transmission is ample on any link. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** Two maximum reads at once, or 256 of nbdcopy's: enough to keep every mirror's request window busy. */
export const DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;

/**
 * Free read buffers kept for reuse: 64 MiB holds a warm nbdcopy's four
 * connections of 64 × 256 KiB requests, or 32 of qemu's 2 MiB ones; a server
 * shares one pool among all its connections, so idle ones hold nothing extra.
 */
export const DEFAULT_BUFFER_POOL_BYTES = 64 * 1024 * 1024;

/** How long a closed connection waits for the client to close its side. */
const HANG_UP_GRACE_MS = 5_000;

/** Option data past this is no option this server knows (the largest is a 4 KiB name plus queries). */
const MAX_OPTION_BYTES = 64 * 1024;

/**
 * One client connection, from the greeting to the hang-up: the fixed newstyle
 * handshake, then requests served concurrently, each answered as soon as it
 * is done. A client that breaks the protocol loses this connection only:
 * run() never rejects.
 */
export class NbdSession {
  private readonly reader: SocketReader;
  private readonly maxRequestBytes: number;
  private readonly buffers: BufferPool;
  private inflightBytes = 0;
  private readonly inflight = new Set<Promise<void>>();
  private wakeIntake: (() => void) | undefined;

  constructor(
    private readonly components: {
      socket: Socket;
      catalog: ExportCatalog<NbdExport>;
      logger?: Logger | undefined;
      counters?: NbdCounters | undefined;
      /** Read buffers shared with the other sessions of a server; a session of its own has its own. */
      buffers?: BufferPool | undefined;
    },
    private readonly options: NbdSessionOptions = {},
  ) {
    this.reader = new SocketReader(components.socket);
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.buffers = components.buffers ?? new BufferPool(DEFAULT_BUFFER_POOL_BYTES);
  }

  private get logger(): Logger {
    return this.components.logger ?? SILENT_LOGGER;
  }

  /**
   * Serves until the client leaves or breaks the protocol, or `stop` aborts:
   * then no request is taken any more, those in flight are answered, and the
   * connection is closed (a client that reconnects, as qemu does, resends what
   * was not answered). `abort` cuts the requests in flight short too.
   */
  async run(stop: AbortSignal, abort?: AbortSignal): Promise<void> {
    const { socket } = this.components;
    const closed = new AbortController();
    const onStop = () => this.reader.close(new ConnectionClosedError('the server is stopping'));
    stop.addEventListener('abort', onStop, { once: true });
    socket.once('close', () => closed.abort());
    // In-flight work stops when the client is gone or the server gives up waiting, not when intake stops.
    const work = abort ? AbortSignal.any([abort, closed.signal]) : closed.signal;
    try {
      const chosen = await this.handshake(stop);
      if (chosen) await this.transmit(chosen.export, chosen.structured, chosen.allocation, stop, work);
      await this.hangUp();
    } catch (e) {
      if (e instanceof ConnectionClosedError) {
        await this.hangUp();
        return;
      }
      if (this.components.counters) this.components.counters.dropped++;
      this.logger.fault(`nbd client ${peer(socket)}: ${(e as Error).message}; connection dropped`);
      socket.destroy();
      await Promise.allSettled([...this.inflight]);
    } finally {
      stop.removeEventListener('abort', onStop);
    }
  }

  /** Once every request in flight is answered: the replies flushed, then the connection closed. */
  private async hangUp(): Promise<void> {
    const { socket } = this.components;
    await Promise.allSettled([...this.inflight]);
    if (socket.destroyed) return;
    socket.end();
    // A client that never closes its side does not keep the connection.
    setTimeout(() => socket.destroy(), HANG_UP_GRACE_MS).unref();
  }

  private async handshake(
    signal: AbortSignal,
  ): Promise<{ export: NbdExport; structured: boolean; allocation: boolean } | undefined> {
    const { socket, catalog } = this.components;
    const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const timer = setTimeout(
      () => this.reader.close(new NbdStreamError(`no transmission after ${timeoutMs} ms of handshake`)),
      timeoutMs,
    );
    try {
      const greeting = Buffer.alloc(18);
      greeting.writeBigUInt64BE(NBD_INIT_MAGIC, 0);
      greeting.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
      greeting.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
      socket.write(greeting);
      const clientFlags = (await this.reader.read(4)).readUInt32BE(0);
      if (clientFlags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        throw new NbdStreamError(`unknown client flags 0x${clientFlags.toString(16)}`);
      }
      const state = newNegotiation((clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0);
      const maxOptions = this.options.maxOptions ?? DEFAULT_MAX_OPTIONS;
      for (let n = 0; n < maxOptions && !signal.aborted; n++) {
        const head = await this.reader.read(16);
        if (head.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) throw new NbdStreamError('bad option magic');
        const option = head.readUInt32BE(8);
        const length = head.readUInt32BE(12);
        if (length > MAX_OPTION_BYTES) throw new NbdStreamError(`option ${option} with ${length} bytes of data`);
        const data = length ? await this.reader.read(length) : Buffer.alloc(0);
        const outcome = answerOption(option, data, state, catalog, { maxRequestBytes: this.maxRequestBytes });
        for (const r of outcome.replies) socket.write(r);
        if (outcome.next === 'close') {
          this.logger.verbose(`nbd client ${peer(socket)}: ${outcome.reason}`);
          return undefined;
        }
        if (outcome.next === 'go') {
          return { export: outcome.export, structured: state.structured, allocation: outcome.allocation };
        }
      }
      if (signal.aborted) return undefined;
      throw new NbdStreamError(`still haggling after ${maxOptions} options`);
    } finally {
      clearTimeout(timer);
    }
  }

  private async transmit(
    exp: NbdExport,
    structured: boolean,
    allocation: boolean,
    signal: AbortSignal,
    work: AbortSignal,
  ) {
    const { socket, counters } = this.components;
    this.logger.verbose(`nbd client ${peer(socket)}: serving ${exp.name}`);
    const connection = exp.connect();
    const ctx = { size: exp.size, maxRequestBytes: this.maxRequestBytes, structured, allocation };
    const maxInflight = this.options.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES;
    while (!signal.aborted) {
      // Taking no request while the replies back up or too much is being read: the client waits in TCP.
      while ((this.inflightBytes >= maxInflight || socket.writableNeedDrain) && !signal.aborted) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            socket.off('drain', wake);
            socket.off('close', wake);
            signal.removeEventListener('abort', wake);
            this.wakeIntake = undefined;
            resolve();
          };
          this.wakeIntake = wake;
          socket.on('drain', wake);
          // A client gone while its replies backed up: the next read finds the connection closed.
          socket.on('close', wake);
          signal.addEventListener('abort', wake, { once: true });
        });
      }
      const r = parseRequest(await this.reader.read(REQUEST_HEADER_BYTES));
      if (counters) counters.requests++;
      if (hasPayload(r)) {
        // Consumed to stay in step with the client, then refused; a payload past the limit is not worth reading.
        if (r.length > this.maxRequestBytes) throw new NbdStreamError(`a write payload of ${r.length} bytes`);
        await this.reader.skip(r.length);
      }
      if (r.type === NBD_CMD.DISC) return;
      const refused = checkRequest(r, ctx);
      if (refused) {
        this.fail(r, structured, refused, refusalText(r, refused, exp.size));
        continue;
      }
      this.track(r.type === NBD_CMD.READ ? r.length : 0, this.serve(r, exp, connection, structured, work));
    }
  }

  private track(bytes: number, work: Promise<void>): void {
    this.inflightBytes += bytes;
    const done = work.finally(() => {
      this.inflightBytes -= bytes;
      this.inflight.delete(done);
      const wake = this.wakeIntake;
      this.wakeIntake = undefined;
      wake?.();
    });
    this.inflight.add(done);
  }

  private async serve(
    r: NbdRequest,
    exp: NbdExport,
    connection: ExportConnection,
    structured: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    const { counters } = this.components;
    try {
      switch (r.type) {
        case NBD_CMD.READ: {
          const buf = this.buffers.take(r.length);
          try {
            await connection.read(buf, r.offset, signal);
          } catch (e) {
            this.buffers.give(buf);
            throw e;
          }
          if (counters) counters.bytesRead += r.length;
          const head = structured ? offsetDataHeader(r.cookie, r.offset, r.length) : simpleReply(r.cookie, 0);
          this.send(head, buf, () => this.buffers.give(buf));
          return;
        }
        case NBD_CMD.FLUSH:
          break; // nothing is ever written
        case NBD_CMD.CACHE:
          await connection.cache(r.offset, r.length, signal);
          break;
        case NBD_CMD.BLOCK_STATUS: {
          const one = (r.flags & NBD_CMD_FLAG.REQ_ONE) !== 0;
          this.send(blockStatusChunk(r.cookie, allocationExtents(exp, r.offset, r.length, one)));
          return;
        }
      }
      this.send(structured ? doneChunk(r.cookie) : simpleReply(r.cookie, 0));
    } catch (e) {
      if (signal.aborted) return;
      this.fail(r, structured, NBD_E.EIO, (e as Error).message);
    }
  }

  private fail(r: NbdRequest, structured: boolean, errno: number, message: string): void {
    if (this.components.counters) this.components.counters.errors++;
    this.send(structured ? errorChunk(r.cookie, errno, message) : simpleReply(r.cookie, errno));
  }

  /**
   * One reply, its header and data written back to back so replies of
   * concurrent requests never interleave; `written` runs once the data is
   * out of the socket's hands (or will never be), as the data's owner needs.
   */
  private send(head: Buffer, data?: Buffer, written?: () => void): void {
    const { socket } = this.components;
    if (socket.destroyed) {
      written?.();
      return;
    }
    socket.cork();
    socket.write(head);
    if (data) socket.write(data, written && (() => written()));
    socket.uncork();
  }
}

function refusalText(r: NbdRequest, errno: number, size: number): string {
  if (errno === NBD_E.EPERM) return 'the export is read-only';
  return `request type ${r.type} flags 0x${r.flags.toString(16)} [${r.offset}, +${r.length}) refused (export size ${size})`;
}

function peer(socket: Socket): string {
  return socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'on the unix socket';
}
