import { createHash } from 'node:crypto';
import { decodeIndex, encodeIndex } from '@thfc/format';

/** A small real index of `blocks` raw 4 KiB blocks of distinct bytes: its bytes, digest and block ids. */
export function indexFixture(name: string, blocks: number, seed = 1) {
  const ids: string[] = [];
  const entries = [];
  for (let i = 0; i < blocks; i++) {
    const data = Buffer.alloc(4096, (seed * 31 + i) & 0xff);
    data.writeUInt32BE(seed * 1000 + i);
    const id = createHash('sha1').update(data).digest('hex');
    ids.push(id);
    entries.push({ id, codec: 'none' as const, storedSize: 4096 });
  }
  const bytes = encodeIndex(
    {
      version: 1,
      name,
      size: blocks * 4096,
      blockSize: 4096,
      hash: 'sha1',
      codec: 'none',
      created: '2026-11-27T09:00:00Z',
    },
    entries,
  );
  return { bytes, digest: decodeIndex(bytes).digest, ids };
}
