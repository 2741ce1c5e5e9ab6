import { MirrorUnavailableError } from '@thfc/format';
import { readAt } from '../store-reader.js';
import type { Exchange } from './exchange.js';
import type { RouteContext } from './route-context.js';
import { type Representation, sendBuffer, sendFile } from './send-representation.js';

/**
 * A block never changes: its name is the hash of its content. So the name is
 * its ETag, and any cache may keep it for a year without asking again
 * (`immutable` also stops browsers revalidating on reload).
 */
export const BLOCK_CACHE_CONTROL = 'public, max-age=31536000, immutable';

function blockRepresentation(id: string, size: number): Representation {
  return { size, etag: `"${id}"`, contentType: 'application/octet-stream', cacheControl: BLOCK_CACHE_CONTROL };
}

/**
 * `GET|HEAD /blocks/ab/<id>`: from the memory cache, else the store, else,
 * with an upstream, pulled through (pull-through.ts), else 404. An upstream
 * that cannot deliver is 502, a store that cannot be read 500: both are
 * "could not answer", so a client's failover moves on, while 404 tells it
 * the block is not here.
 */
export async function serveBlock(ex: Exchange, id: string, ctx: RouteContext): Promise<void> {
  const memory = ctx.memory;
  const hot = memory?.get(id);
  if (hot) {
    ex.onClose = () => memory?.release(hot);
    sendBuffer(ex, blockRepresentation(id, hot.bytes.length), hot.bytes);
    return;
  }
  const file = await ctx.store.openBlock(id);
  if (file) {
    if (memory && !ex.head && memory.accepts(file.size)) {
      // One read, as streaming it would take, into a buffer that is then kept.
      const buffer = memory.buffer(file.size);
      try {
        for (let off = 0; off < file.size; ) {
          const n = await readAt(file.fd, buffer.subarray(off), file.size - off, off);
          if (n === 0) throw new MirrorUnavailableError(`block ${id}`, 'file shorter than its size');
          off += n;
        }
      } finally {
        ctx.store.releaseBlock(file);
      }
      const kept = memory.add(id, buffer.length === file.size ? buffer : buffer.subarray(0, file.size));
      ex.onClose = () => memory.release(kept);
      sendBuffer(ex, blockRepresentation(id, file.size), kept.bytes);
      return;
    }
    sendFile(ex, blockRepresentation(id, file.size), file, ctx, () => ctx.store.releaseBlock(file));
    return;
  }
  if (!ctx.pull) {
    ex.reply(404, 'no such block\n');
    return;
  }
  let stored: Uint8Array | undefined;
  try {
    stored = await ctx.pull.block(id);
  } catch (e) {
    if (!(e instanceof MirrorUnavailableError)) throw e;
    ctx.logger.fault(`pull-through of block ${id} failed: ${e.message}`);
    ex.reply(502, 'upstream could not deliver this block\n');
    return;
  }
  if (!stored) {
    ex.reply(404, 'no such block here or upstream\n');
    return;
  }
  sendBuffer(ex, blockRepresentation(id, stored.length), stored);
}
