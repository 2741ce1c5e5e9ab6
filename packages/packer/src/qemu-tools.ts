import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from './errors.js';
import { type Extent, parseQemuMap } from './image-extents.js';
import { NbdClient } from './nbd-client.js';

/**
 * The packer's one door to qemu (qemu-utils): `qemu-img info` to learn an
 * image's format, `qemu-img map` for its extents (qemu finds holes with
 * SEEK_DATA/SEEK_HOLE for raw files, and reads the allocation tables of
 * qcow2 and the rest), and `qemu-nbd` on a private unix socket to read a
 * non-raw image as raw bytes with no temporary copy on disk.
 */

export interface ImageFacts {
  readonly format: string;
  readonly virtualSize: number;
  readonly backingFile?: string | undefined;
}

/** qemu's own outputs are small (map of a 1 TiB image with 1,000 extents: ~150 KB); this bounds a pathological one. */
const MAX_QEMU_OUTPUT = 256 * 1024 * 1024;

/** Formats handed to qemu-nbd; `raw` is read directly. These are the ones qemu-img can also map. */
export const QEMU_FORMATS = ['qcow2', 'qcow', 'vmdk', 'vdi', 'vhdx', 'vpc', 'qed', 'parallels'] as const;

/** undefined when qemu-img is not installed: the caller then reads everything, as before qemu was used. */
export async function imageFacts(path: string, signal?: AbortSignal): Promise<ImageFacts | undefined> {
  const out = await runQemuImg(['info', '--output=json', '-U', '--', path], path, signal);
  if (out === undefined) return undefined;
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(out) as Record<string, unknown>;
  } catch {
    throw new InputError(`${path}: qemu-img info gave output that is not JSON`);
  }
  const format = info.format;
  const virtualSize = info['virtual-size'];
  if (typeof format !== 'string' || !Number.isSafeInteger(virtualSize)) {
    throw new InputError(`${path}: qemu-img info gave no format or size`);
  }
  const backing = info['full-backing-filename'] ?? info['backing-filename'];
  return { format, virtualSize: virtualSize as number, backingFile: typeof backing === 'string' ? backing : undefined };
}

/** The image's extents as qemu sees them through `format`; undefined when qemu-img is not installed. */
export async function imageExtents(
  path: string,
  format: string,
  signal?: AbortSignal,
): Promise<{ extents: Extent[]; size: number } | undefined> {
  const out = await runQemuImg(['map', '--output=json', '-U', '-f', format, '--', path], path, signal);
  return out === undefined ? undefined : parseQemuMap(out, path);
}

function runQemuImg(args: string[], what: string, signal?: AbortSignal): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    execFile('qemu-img', args, { maxBuffer: MAX_QEMU_OUTPUT, signal, encoding: 'utf8' }, (e, stdout, stderr) => {
      if (!e) return resolve(stdout);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      if (signal?.aborted) return reject(signal.reason);
      const why = stderr.trim().split('\n').pop() ?? e.message;
      reject(new InputError(`${what}: qemu-img ${args[0]} failed: ${why.replace(/^qemu-img: /, '')}`));
    });
  });
}

/** A qemu image opened through qemu-nbd: read like a raw file; `close` ends the connection and the server. */
export interface QemuImageReader {
  readonly size: number;
  read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number; buffer: Uint8Array }>;
  close(): Promise<void>;
}

/** qemu-nbd opens its socket within ~50 ms; 10 s covers a loaded machine before calling it failed. */
const NBD_START_TIMEOUT_MS = 10_000;
const NBD_START_POLL_MS = 20;

/**
 * Serves `path` read-only through qemu-nbd on a unix socket in a private
 * temp directory, and connects to it. The server serves this one
 * connection and exits when it closes; it is killed if anything fails.
 */
export async function openThroughQemuNbd(path: string, format: string, signal?: AbortSignal): Promise<QemuImageReader> {
  const dir = await mkdtemp(join(tmpdir(), 'thfc-nbd-'));
  const socket = join(dir, 'nbd.sock');
  const child = spawn('qemu-nbd', ['--read-only', '--format', format, '--socket', socket, '--shared=1', '--', path], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.on('error', (e) => {
      exited =
        (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'qemu-nbd is not installed (Debian: qemu-utils)' : e.message;
      resolve();
    });
    child.on('exit', (code, sig) => {
      exited ??= `qemu-nbd exited (${sig ?? code}): ${stderr.trim().split('\n').pop() ?? ''}`;
      resolve();
    });
  });
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null && !exited) child.kill('SIGTERM');
    await Promise.race([exitedPromise, new Promise((r) => setTimeout(r, 2000))]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + NBD_START_TIMEOUT_MS;
    let client: NbdClient | undefined;
    while (!client) {
      signal?.throwIfAborted();
      if (exited) throw new InputError(`${path}: ${exited}`);
      try {
        client = await NbdClient.open(socket, path, signal);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) {
          throw e instanceof InputError ? e : new InputError(`${path}: cannot reach qemu-nbd: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, NBD_START_POLL_MS));
      }
    }
    const opened = client;
    return {
      size: opened.size,
      read: (buffer, offset, length, position) => opened.read(buffer, offset, length, position),
      close: async () => {
        await opened.close().catch(() => {});
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
