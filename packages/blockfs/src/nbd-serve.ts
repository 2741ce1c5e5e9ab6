import type { MeasurementLog } from '@thfc/attest/measurement-log';
import { UsageError } from '@thfc/format';
import type { Logger } from '@thfc/store';
import { buildImages, type ImageSet, type ImageState } from './build-images.js';
import { startBackground } from './image-background.js';
import { newReadStream } from './image-reader.js';
import { type ImageStatus, loadIndexSet, type MountOptions, type MountStatus } from './mount.js';
import { bytesExport } from './nbd/bytes-export.js';
import type { ExportCatalog } from './nbd/negotiation.js';
import { type NbdListen, NbdServer } from './nbd/server.js';
import type { NbdCounters, NbdExport } from './nbd/session.js';
import { NBD_MEASUREMENTS_EXPORT, NBD_STATS_EXPORT, readNbdExport } from './nbd/status-client.js';
import { collectGarbage } from './release-memory.js';

export interface NbdServeOptions extends Omit<MountOptions, 'mountpoint' | 'allowOther'> {
  readonly listen: NbdListen;
  /** NBD connections at once (`maxConnections` is the mirrors' request window, as for a mount). */
  readonly maxClients?: number | undefined;
  readonly maxRequestBytes?: number | undefined;
}

export interface NbdStatus extends Omit<MountStatus, 'mountpoint' | 'switch'> {
  /** Where clients connect (nbd+unix:// or nbd://). */
  readonly address: string;
  readonly nbd: NbdCounters;
  readonly images: readonly ImageStatus[];
}

export interface Serving {
  readonly address: string;
  /** With --replace: the pid of the daemon whose socket this one took over; it should now be told to stop. */
  readonly replaced: number | undefined;
  readonly catalog: ExportCatalog<NbdExport>;
  status(): NbdStatus;
  close(): Promise<void>;
}

/**
 * `httpstorged nbd`: loads every index (all or nothing) as a mount does,
 * builds each image's source tree with the same builder, and serves each
 * image as an NBD export named by its image name (the empty name is the
 * first image). Resolves once the server listens.
 */
export async function serveImages(
  options: NbdServeOptions,
  components: {
    logger: Logger;
    env: Readonly<Record<string, string | undefined>>;
    measurements?: MeasurementLog | undefined;
  },
): Promise<Serving> {
  const { logger } = components;
  const { pool, mirrorBases, dispatcher, cacheDir, loaded, measurements } = await loadIndexSet(options, components);

  const set = await buildImages(loaded, options, { logger, dispatcher, cacheDir, mirrorBases, measurements });
  const { images } = set;
  // Once this function has returned: its suspended frame may still point at what it loaded.
  setImmediate(collectGarbage);

  const status = (): NbdStatus => {
    const { pid, started, cache, images } = set.status();
    return { address: server.address, pid, started, cache, nbd: { ...server.counters }, images };
  };
  const exports = images.map((s) => imageExport(s, measurements));
  // The status files a mount shows under .thfc/, as hidden exports (not listed): `httpstorged stats SOCKET`.
  const statusFiles = new Map<string, () => string>([
    [NBD_STATS_EXPORT, () => `${JSON.stringify(status(), null, 2)}\n`],
    [NBD_MEASUREMENTS_EXPORT, () => measurements.text()],
  ]);
  const catalog = catalogOf(exports, statusFiles);
  const server = new NbdServer(
    { catalog, logger },
    {
      listen: options.listen,
      maxConnections: options.maxClients,
      maxRequestBytes: options.maxRequestBytes,
    },
  );
  const replaced = await daemonToReplace(options.listen);
  await listenOrAbandon(server, set, options.listen);
  logger.info(`serving ${exports.map((e) => e.name).join(', ')} over NBD at ${server.address}`);
  const background = new AbortController();
  startBackground(set, pool, { dispatcher, logger, env: components.env }, options, background.signal);

  return {
    address: server.address,
    replaced,
    catalog,
    status,
    async close() {
      background.abort();
      pool?.close();
      await server.close();
      await set.close();
      logger.info(`stopped serving at ${server.address}`);
    },
  };
}

/** The images' exports by name (the empty name is the first), and the hidden status exports, made when asked. */
function catalogOf(exports: readonly NbdExport[], statusFiles: Map<string, () => string>): ExportCatalog<NbdExport> {
  return {
    find: (name) => {
      const file = statusFiles.get(name);
      if (file) return bytesExport(name, Buffer.from(file()));
      return name === '' ? exports[0] : exports.find((e) => e.name === name);
    },
    list: () => exports,
  };
}

/** Listens, or closes the images never served and says why it could not (a UsageError, exit 2). */
async function listenOrAbandon(server: NbdServer, set: ImageSet, listen: NbdListen): Promise<void> {
  try {
    await server.listen();
  } catch (e) {
    await set.abandon();
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot listen on ${describe(listen)}: ${(e as Error).message}`);
  }
}

/**
 * With --replace, the daemon listening on the socket now: its pid, from its
 * own stats export. None there (it died) is no error: the socket is replaced.
 */
async function daemonToReplace(l: NbdListen): Promise<number | undefined> {
  if (l.kind !== 'unix' || !l.replace) return undefined;
  try {
    const bytes = await readNbdExport({ path: l.path }, NBD_STATS_EXPORT, AbortSignal.timeout(10_000));
    return (JSON.parse(bytes.toString('utf8')) as NbdStatus).pid;
  } catch {
    return undefined;
  }
}

function describe(l: NbdListen): string {
  return l.kind === 'unix' ? l.path : `${l.host}:${l.port}`;
}

/**
 * One image as an export. Reads go through the image reader, so they are
 * verified, cached and read ahead as a mount's are; each connection is one
 * read stream. A read is answered only once every measurement so far is in
 * the log (measure before use). CACHE loads the range's blocks at background
 * priority, as read-ahead does.
 */
function imageExport(s: ImageState, measurements: MeasurementLog): NbdExport {
  const { index, reader, blocks } = s;
  const { name, size, blockSize } = index.header;
  return {
    name,
    size,
    blockSize,
    preferredBlockSize: blockSize,
    description: `thfc image ${s.loaded.decoded.digest}`,
    isZero: (i) => !index.ref(i),
    connect() {
      const stream = newReadStream();
      return {
        async read(buf, offset, signal) {
          const now = measurements.immediate ? reader.readNow(buf, buf.length, offset, stream) : undefined;
          const n = now ?? (await reader.read(buf, buf.length, offset, stream, signal));
          if (now === undefined) await measurements.settled();
          if (n !== buf.length) throw new Error(`short read of ${name}: ${n} of ${buf.length} bytes at ${offset}`);
        },
        async cache(offset, length, signal) {
          const first = Math.floor(offset / blockSize);
          const last = Math.floor((offset + Math.max(1, length) - 1) / blockSize);
          const loads: Promise<unknown>[] = [];
          for (let i = first; i <= last; i++) {
            const ref = index.ref(i);
            if (ref) loads.push(blocks.load(ref, { priority: 'background', signal }));
          }
          const results = await Promise.allSettled(loads);
          const failed = results.find((r) => r.status === 'rejected');
          if (failed) throw (failed as PromiseRejectedResult).reason;
        },
      };
    },
  };
}
