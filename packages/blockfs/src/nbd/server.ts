import { createServer, type Server, type Socket } from 'node:net';
import { type Logger, SILENT_LOGGER } from '@thfc/store';
import { BufferPool } from './buffer-pool.js';
import type { ExportCatalog } from './negotiation.js';
import {
  DEFAULT_BUFFER_POOL_BYTES,
  type NbdCounters,
  type NbdExport,
  NbdSession,
  type NbdSessionOptions,
  newNbdCounters,
} from './session.js';
import { listenOnSocketFile, removeSocketFile } from './socket-file.js';

export type NbdListen =
  /** A Unix socket: mode 0600, or 0660 owned by `gid` to share it with a group. */
  | {
      readonly kind: 'unix';
      readonly path: string;
      readonly gid?: number | undefined;
      /** Take the path over from a daemon still listening on it (a planned restart). */
      readonly replace?: boolean | undefined;
    }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export interface NbdServerOptions extends NbdSessionOptions {
  readonly listen: NbdListen;
  /** Connections at once; past it new ones are closed at accept. */
  readonly maxConnections?: number | undefined;
}

/**
 * 64 connections: qemu opens one per disk (more with multi-conn, up to 16),
 * nbdcopy four by default; a client opening hundreds is misbehaving.
 */
export const DEFAULT_MAX_CONNECTIONS = 64;

/** A read waiting on a slow mirror is given this long to be answered when the server stops. */
export const DEFAULT_DRAIN_MS = 10_000;

/**
 * The NBD server: accepts connections on a Unix socket or TCP and runs one
 * session per connection. A session's failure ends that connection only.
 */
export class NbdServer {
  readonly counters: NbdCounters = newNbdCounters();
  private readonly server: Server;
  private readonly stop = new AbortController();
  private readonly abort = new AbortController();
  private readonly sessions = new Set<Promise<void>>();
  private readonly buffers = new BufferPool(DEFAULT_BUFFER_POOL_BYTES);
  private socketIno: number | undefined;

  constructor(
    private readonly components: { catalog: ExportCatalog<NbdExport>; logger?: Logger | undefined },
    private readonly options: NbdServerOptions,
  ) {
    this.server = createServer((socket) => this.accept(socket));
    this.server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  }

  /** Where clients connect: an nbd+unix:// or nbd:// URI without the export name. */
  get address(): string {
    const l = this.options.listen;
    if (l.kind === 'unix') return `nbd+unix:///?socket=${l.path}`;
    const a = this.server.address();
    const port = a && typeof a === 'object' ? a.port : l.port;
    return `nbd://${l.host.includes(':') ? `[${l.host}]` : l.host}:${port}`;
  }

  async listen(): Promise<void> {
    const l = this.options.listen;
    if (l.kind === 'unix') {
      this.socketIno = await listenOnSocketFile(this.server, l.path, { gid: l.gid, replace: l.replace });
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(l.port, l.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Stops accepting and taking requests; the requests in flight are answered
   * (for up to `drainMs`, then cut short) before each connection is closed.
   * Removes the socket file, if it is still ours.
   */
  async close(drainMs = DEFAULT_DRAIN_MS): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.stop.abort();
    const cut = setTimeout(() => this.abort.abort(), drainMs);
    await Promise.allSettled([...this.sessions]);
    clearTimeout(cut);
    await closed;
    const l = this.options.listen;
    if (l.kind === 'unix' && this.socketIno !== undefined) await removeSocketFile(l.path, this.socketIno);
  }

  private accept(socket: Socket): void {
    const { counters } = this;
    counters.connections++;
    counters.connectionsTotal++;
    socket.setNoDelay?.(true);
    const session = new NbdSession(
      {
        socket,
        catalog: this.components.catalog,
        logger: this.components.logger ?? SILENT_LOGGER,
        counters,
        buffers: this.buffers,
      },
      this.options,
    );
    const run = session.run(this.stop.signal, this.abort.signal).finally(() => {
      counters.connections--;
      this.sessions.delete(run);
    });
    this.sessions.add(run);
  }
}
