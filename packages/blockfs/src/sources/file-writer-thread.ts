import { closeSync, fstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { identityOf } from './file-identity.js';

/**
 * The body of the FileWriterThread: creates cache files the way writeNewFile
 * does (exclusive temp, write, rename, fstat on the written descriptor,
 * close), with synchronous calls: this thread has nothing else to do
 * meanwhile, and one message per file replaces five round trips through
 * libuv's pool and their callbacks on the main thread.
 */

export interface WriteRequest {
  readonly n: number;
  readonly tmp: string;
  readonly path: string;
  readonly bytes: Uint8Array;
}

export type WriteReply =
  | { readonly n: number; readonly identity: string }
  | { readonly n: number; readonly error: string; readonly code?: string | undefined };

/** Writes `bytes` to `tmp`, renames it onto `path`; the identity of the file written. `tmp` is gone on failure. */
export function writeNewFileSync(tmp: string, path: string, bytes: Uint8Array): string {
  const fd = openSync(tmp, 'wx', 0o644);
  let renamed = false;
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    renameSync(tmp, path);
    renamed = true;
    return identityOf(fstatSync(fd, { bigint: true }));
  } catch (e) {
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {
        // Already gone: nothing to clean.
      }
    }
    throw e;
  } finally {
    closeSync(fd);
  }
}

const port = parentPort;
port?.on('message', (m: WriteRequest) => {
  let reply: WriteReply;
  try {
    reply = { n: m.n, identity: writeNewFileSync(m.tmp, m.path, m.bytes) };
  } catch (e) {
    reply = { n: m.n, error: (e as Error)?.message ?? String(e), code: (e as NodeJS.ErrnoException)?.code };
  }
  port.postMessage(reply);
});
