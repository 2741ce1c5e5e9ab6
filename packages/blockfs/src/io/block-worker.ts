import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { BlockCorruptError, type BlockRef, blockId, decodeVerified, hashOfId } from '@thfc/format';

/**
 * The body of one BlockWorkers thread: decodes and verifies fetched blocks,
 * and hashes cached block files, off the main thread (its file reads are
 * synchronous: this thread has nothing else to do meanwhile). Messages and replies
 * are the types below. Stored bytes arrive and leave, and decoded blocks
 * leave, as transferred buffers: nothing is copied between threads.
 */

export type WorkerRequest =
  | {
      readonly n: number;
      readonly op: 'decode';
      readonly ref: BlockRef;
      readonly stored: Uint8Array;
      readonly source: string;
      /** A recycled buffer (at least ref.size bytes) to return the block in. */
      readonly into?: Uint8Array | undefined;
    }
  | { readonly n: number; readonly op: 'verify'; readonly fd: number; readonly size: number; readonly id: string };

export type WorkerReply =
  /** `stored` comes back unless it is `data` itself (a raw block). */
  | { readonly n: number; readonly data: Uint8Array; readonly stored?: Uint8Array }
  | { readonly n: number; readonly ok: boolean }
  | { readonly n: number; readonly corrupt: string }
  | { readonly n: number; readonly error: string; readonly code?: string | undefined };

const port = parentPort;
/** One buffer for file checks: a worker checks one file at a time. */
let scratch = Buffer.allocUnsafeSlow(0);

function handle(m: WorkerRequest): { reply: WorkerReply; transfer?: ArrayBuffer[] } {
  if (m.op === 'verify') {
    const alg = hashOfId(m.id);
    if (alg === undefined) return { reply: { n: m.n, ok: false } };
    if (scratch.length < m.size) scratch = Buffer.allocUnsafeSlow(m.size);
    const got = readSync(m.fd, scratch, 0, m.size, 0);
    return { reply: { n: m.n, ok: got === m.size && blockId(scratch.subarray(0, m.size), alg) === m.id } };
  }
  // Into the recycled buffer when there is one (zstd decodes straight into it; a raw or zlib block is copied
  // there): the main thread then allocates nothing per block. Both buffers go back without a copy.
  const decoded = decodeVerified(m.ref, m.stored, m.source, m.into);
  const data =
    m.into && decoded.buffer !== m.into.buffer && m.into.length >= decoded.length ? copyInto(m.into, decoded) : decoded;
  if (data.buffer === m.stored.buffer) return { reply: { n: m.n, data }, transfer: [data.buffer as ArrayBuffer] };
  const transfer = [data.buffer as ArrayBuffer, m.stored.buffer as ArrayBuffer];
  return { reply: { n: m.n, data, stored: m.stored }, transfer };
}

function copyInto(into: Uint8Array, data: Uint8Array): Uint8Array {
  into.set(data);
  return into.subarray(0, data.length);
}

port?.on('message', (m: WorkerRequest) => {
  let out: { reply: WorkerReply; transfer?: ArrayBuffer[] };
  try {
    out = handle(m);
  } catch (e) {
    if (e instanceof BlockCorruptError && m.op === 'decode') {
      out = { reply: { n: m.n, corrupt: e.reason } };
    } else {
      out = { reply: { n: m.n, error: (e as Error)?.message ?? String(e), code: (e as NodeJS.ErrnoException)?.code } };
    }
  }
  port.postMessage(out.reply, out.transfer ?? []);
});
