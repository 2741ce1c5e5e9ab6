import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import {
  blockId,
  blockPath,
  type CodecSpec,
  encodeBlock,
  encodeBound,
  type HashAlgorithm,
  isZeroBlock,
} from '@thfc/format';
import { probeStoredBlockSync } from '@thfc/store';
import type { PackTask, PackTaskResult } from './pack-protocol.js';

/**
 * One pack worker: zero check, hash, and (only for blocks the store lacks)
 * compression. Checking the store here, before compressing, is what makes a
 * republish of a mostly unchanged image cost a hash per block, not a
 * compression. Writing stays in the main thread (DirStore), in one place.
 *
 * Compressed bytes go to one scratch buffer kept for the worker's life and
 * are copied back over the block in the task's own buffer (compression only
 * keeps output shorter than the block), which goes back to the packer: a
 * block allocates nothing here.
 */
const { storeRoot, hash, codec } = workerData as { storeRoot: string; hash: HashAlgorithm; codec: CodecSpec };
const port = parentPort;
if (!port) throw new Error('pack-worker must run as a worker thread');

let scratch = Buffer.alloc(0);

port.on('message', (task: PackTask) => {
  let result: PackTaskResult;
  try {
    const data = new Uint8Array(task.buffer, 0, task.length);
    if (isZeroBlock(data)) {
      result = { seq: task.seq, zero: true, buffer: task.buffer };
    } else {
      const id = blockId(data, hash);
      const existing = probeStoredBlockSync(join(storeRoot, blockPath(id)), data.length);
      if (existing) {
        result = {
          seq: task.seq,
          zero: false,
          id,
          codec: existing.codec,
          storedSize: existing.storedSize,
          existing: true,
          buffer: task.buffer,
        };
      } else {
        const bound = encodeBound(data.length);
        if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(bound);
        const enc = encodeBlock(data, codec, scratch);
        if (enc.bytes !== data) data.set(enc.bytes, 0);
        result = {
          seq: task.seq,
          zero: false,
          id,
          codec: enc.codec,
          storedSize: enc.bytes.length,
          existing: false,
          buffer: task.buffer,
        };
      }
    }
  } catch (e) {
    result = { seq: task.seq, error: (e as Error).message };
  }
  port.postMessage(result, 'buffer' in result ? [result.buffer] : []);
});
