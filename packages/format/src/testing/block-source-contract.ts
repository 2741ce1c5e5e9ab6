import { blockId } from '../block-id.js';
import type { BlockRef, BlockSink, BlockSource } from '../block-source.js';
import { encodeBlock } from '../codecs.js';
import { BlockNotFoundError } from '../errors.js';

/**
 * The contract every BlockSource+BlockSink implementation runs, so that a
 * directory store, a disk cache and an HTTP mirror all mean the same thing by
 * get/has/put. Pass vitest's `describe`, `it` and `expect`; `make` returns a
 * fresh, empty implementation.
 */
export interface ContractTest {
  describe: (name: string, fn: () => void) => void;
  it: (name: string, fn: () => Promise<void>) => void;
  // biome-ignore lint/suspicious/noExplicitAny: vitest's expect is structurally typed by the caller's version
  expect: (value: unknown) => any;
}

export function sampleBlock(seed: number, size = 4096): { ref: BlockRef; stored: Uint8Array; data: Uint8Array } {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed * 7) & 0xff;
  const enc = encodeBlock(data, { codec: 'zstd', level: 3 });
  return {
    ref: { id: blockId(data, 'sha1'), codec: enc.codec, storedSize: enc.bytes.length, size },
    stored: enc.bytes,
    data,
  };
}

export function blockSourceContract(
  name: string,
  make: () => Promise<BlockSource & BlockSink>,
  { describe, it, expect }: ContractTest,
): void {
  describe(`${name} (BlockSource contract)`, () => {
    it('get rejects with BlockNotFoundError for an absent block', async () => {
      const s = await make();
      const { ref } = sampleBlock(1);
      await expect(s.get(ref)).rejects.toBeInstanceOf(BlockNotFoundError);
      expect(await s.has(ref)).toBe(false);
    });
    it('put then get returns the stored bytes exactly', async () => {
      const s = await make();
      const { ref, stored } = sampleBlock(2);
      await s.put(ref, stored);
      expect(await s.has(ref)).toBe(true);
      expect(Buffer.from(await s.get(ref)).equals(Buffer.from(stored))).toBe(true);
    });
    it('put is idempotent', async () => {
      const s = await make();
      const { ref, stored } = sampleBlock(3);
      await s.put(ref, stored);
      await s.put(ref, stored);
      expect(Buffer.from(await s.get(ref)).equals(Buffer.from(stored))).toBe(true);
    });
    it('an aborted signal rejects', async () => {
      const s = await make();
      const { ref, stored } = sampleBlock(4);
      await s.put(ref, stored);
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      await expect(s.get(ref, { signal: ac.signal })).rejects.toThrow();
    });
    it('toString names the source', async () => {
      const s = await make();
      expect(String(s).length).toBeGreaterThan(0);
    });
  });
}
