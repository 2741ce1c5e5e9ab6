import { BlockNotFoundError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import type { BlockReader } from '../src/sources/block-reader.js';
import type { ReadsNow } from '../src/sources/hot-blocks.js';
import { makeBlock, type TestBlock } from './image-fixtures.js';

/** A reader built to serve `blocks` (or, with `holdsNothing`, none), and how to let its background work finish. */
export interface ContractReader {
  readonly reader: BlockReader;
  /** The hot index over the reader's tree (HotBlocks, as ImageSource builds it); none when nothing in it is hot. */
  readonly hot?: ReadsNow | undefined;
  /** Resolves once writes behind and fetches in flight have landed; the default waits a little. */
  readonly settle?: (() => Promise<void>) | undefined;
}

const SENTINEL = 0xa5;
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the reader's hot index copied with readNow, or undefined when it declined (or there is none). */
function tryNow(r: ContractReader, b: TestBlock, from: number, length: number): Uint8Array | undefined {
  const dst = new Uint8Array(length + 2).fill(SENTINEL);
  if (!r.hot?.readNow(b.ref, dst, 1, from, length)) return undefined;
  expect(dst[0]).toBe(SENTINEL); // nothing before `at`
  expect(dst[length + 1]).toBe(SENTINEL); // nothing past the slice
  return dst.subarray(1, length + 1);
}

/**
 * The contract every BlockReader runs: read, load and the hot index's
 * readNow over its tree agree on a block's bytes (readNow may decline, never differ), and no call writes into
 * a caller's buffer once its promise has settled, whether it resolved, was
 * aborted or failed. `make` returns a fresh reader that can serve the blocks
 * it is given (or none, with `holdsNothing`).
 */
export function blockReaderContract(
  name: string,
  make: (blocks: readonly TestBlock[]) => Promise<ContractReader>,
  { holdsNothing = false }: { holdsNothing?: boolean } = {},
): void {
  describe(`${name} (BlockReader contract)`, () => {
    async function settled(r: ContractReader): Promise<void> {
      await (r.settle ?? (() => pause(20)))();
      await pause(10);
    }

    it('an absent block: read and load reject with BlockNotFoundError, readNow declines, the buffer is untouched', async () => {
      const r = await make([]);
      const b = makeBlock(40);
      const dst = new Uint8Array(b.ref.size).fill(SENTINEL);
      await expect(r.reader.read(b.ref, dst, 0, 0, b.ref.size)).rejects.toBeInstanceOf(BlockNotFoundError);
      await expect(r.reader.load(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
      expect(tryNow(r, b, 0, b.ref.size)).toBeUndefined();
      await settled(r);
      expect(dst.every((x) => x === SENTINEL)).toBe(true);
    });

    if (holdsNothing) return;

    it('read, load and readNow agree on the bytes of a block, whole and sliced', async () => {
      const blocks = [makeBlock(41), makeBlock(42, 8192)];
      const r = await make(blocks);
      for (const b of blocks) {
        const size = b.ref.size;
        expect(tryNow(r, b, 0, size) ?? b.data).toEqual(b.data);
        const loaded = await r.reader.load(b.ref);
        if (loaded) expect(same(loaded, b.data)).toBe(true);
        const dst = new Uint8Array(size + 16).fill(SENTINEL);
        const whole = await r.reader.read(b.ref, dst, 8, 0, size);
        if (whole) expect(same(whole, b.data)).toBe(true);
        expect(same(dst.subarray(8, 8 + size), b.data)).toBe(true);
        expect(dst.subarray(0, 8).every((x) => x === SENTINEL)).toBe(true);
        expect(dst.subarray(8 + size).every((x) => x === SENTINEL)).toBe(true);
        const slice = new Uint8Array(100);
        await r.reader.read(b.ref, slice, 0, size - 300, 100);
        expect(same(slice, b.data.subarray(size - 300, size - 200))).toBe(true);
        await settled(r);
        expect(tryNow(r, b, 0, size) ?? b.data).toEqual(b.data);
        expect(tryNow(r, b, 1000, 123) ?? b.data.subarray(1000, 1123)).toEqual(b.data.subarray(1000, 1123));
      }
    });

    it('parallel reads of one block into different buffers each get the block', async () => {
      const b = makeBlock(43);
      const r = await make([b]);
      const dsts = Array.from({ length: 6 }, () => new Uint8Array(b.ref.size));
      await Promise.all(dsts.map((dst) => r.reader.read(b.ref, dst, 0, 0, b.ref.size)));
      for (const dst of dsts) expect(same(dst, b.data)).toBe(true);
    });

    it('nothing writes into a buffer after its read resolves', async () => {
      const b = makeBlock(44);
      const r = await make([b]);
      const dsts = Array.from({ length: 4 }, () => new Uint8Array(b.ref.size));
      await Promise.all(
        dsts.map((dst) => r.reader.read(b.ref, dst, 0, 0, b.ref.size).finally(() => dst.fill(SENTINEL))),
      );
      await settled(r);
      for (const dst of dsts) expect(dst.every((x) => x === SENTINEL)).toBe(true);
    });

    it('nothing writes into a buffer after its read is aborted, cold or warm', async () => {
      const b = makeBlock(45);
      const r = await make([b]);
      for (const round of ['cold', 'warm']) {
        const dst = new Uint8Array(b.ref.size);
        const ac = new AbortController();
        const reason = new Error(`stop ${round}`);
        const reading = r.reader.read(b.ref, dst, 0, 0, b.ref.size, { signal: ac.signal });
        ac.abort(reason);
        const outcome = await reading.then(
          () => 'resolved',
          (e: unknown) => e,
        );
        dst.fill(SENTINEL);
        // Aborted before it could finish it rejects with the reason; a local read may still complete.
        if (outcome !== 'resolved') expect(outcome).toBe(reason);
        await settled(r);
        expect(dst.every((x) => x === SENTINEL)).toBe(true);
        // The abort left no partial state: the block still reads whole.
        const again = new Uint8Array(b.ref.size);
        await r.reader.read(b.ref, again, 0, 0, b.ref.size);
        expect(same(again, b.data)).toBe(true);
        await settled(r);
      }
    });
  });
}
