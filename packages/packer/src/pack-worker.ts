import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { blockId, blockPath, type CodecSpec, encodeBlock, type HashAlgorithm, isZeroBlock } from '@thfc/format';
import { probeStoredBlockSync } from './dir-store.js';
import type { PackTask, PackTaskResult } from './pack-protocol.js';

/**
 * One pack worker: zero check, hash, and (only for blocks the store lacks)
 * compression. Checking the store here, before compressing, is what makes a
 * republish of a mostly unchanged image cost a hash per block, not a
 * compression. Writing stays in the main thread (DirStore), in one place.
 */
const { storeRoot, hash, codec } = workerData as { storeRoot: string; hash: HashAlgorithm; codec: CodecSpec };
const port = parentPort;
if (!port) throw new Error('pack-worker must run as a worker thread');

port.on('message', (task: PackTask) => {
  let result: PackTaskResult;
  try {
    const data = new Uint8Array(task.buffer, 0, task.length);
    if (isZeroBlock(data)) {
      result = { seq: task.seq, zero: true };
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
        };
      } else {
        const enc = encodeBlock(data, codec);
        const stored = enc.bytes === data ? data.slice() : enc.bytes;
        result = {
          seq: task.seq,
          zero: false,
          id,
          codec: enc.codec,
          storedSize: stored.length,
          existing: false,
          stored,
        };
      }
    }
  } catch (e) {
    result = { seq: task.seq, error: (e as Error).message };
  }
  const transfer = 'stored' in result && result.stored ? [result.stored.buffer as ArrayBuffer] : [];
  port.postMessage(result, transfer);
});
