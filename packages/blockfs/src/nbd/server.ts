import { createServer, type Server, type Socket } from 'node:net';
import { type Logger, SILENT_LOGGER } from '../logger.js';
import type { ExportCatalog } from './negotiation.js';
import { type NbdCounters, type NbdExport, NbdSession, type NbdSessionOptions, newNbdCounters } from './session.js';
import { listenOnSocketFile, removeSocketFile } from './socket-file.js';

export type NbdListen =
  /** A Unix socket: mode 0600, or 0660 owned by `gid` to share it with a group. */
  | { readonly kind: 'unix'; readonly path: string; readonly gid?: number | undefined }
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

/**
 * The NBD server: accepts connections on a Unix socket or TCP and runs one
 * session per connection. A session's failure ends that connection only.
 */
export class NbdServer {
  readonly counters: NbdCounters = newNbdCounters();
  private readonly server: Server;
  private readonly stop = new AbortController();
  private readonly sessions = new Set<Promise<void>>();
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
      this.socketIno = await listenOnSocketFile(this.server, l.path, l.gid);
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

  /** Stops accepting, drops every connection and removes the socket file (if still ours). */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.stop.abort();
    await Promise.allSettled([...this.sessions]);
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
      { socket, catalog: this.components.catalog, logger: this.components.logger ?? SILENT_LOGGER, counters },
      this.options,
    );
    const run = session.run(this.stop.signal).finally(() => {
      counters.connections--;
      this.sessions.delete(run);
    });
    this.sessions.add(run);
  }
}
