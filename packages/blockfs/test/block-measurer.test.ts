import { MeasurementLog, parseLog } from '@thfc/attest';
import type { BlockSource } from '@thfc/format';
import { verified } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import { BlockMeasurer } from '../src/block-measurer.js';
import { ImageReader, newReadStream } from '../src/image-reader.js';
import { CachedReader } from '../src/sources/cached-reader.js';
import { NoCacheReader } from '../src/sources/no-cache-reader.js';
import { makeImage, patternBytes } from './image-fixtures.js';

const blocksOf = (remote: BlockSource) => new CachedReader({ local: new NoCacheReader(), remote: verified(remote) });

/** Six 4 KiB blocks: 0, 1 and 4 distinct, 2 a zero block, 3 and 5 repeat block 0 and 1. */
function image() {
  const a = patternBytes(4096, 1);
  const b = patternBytes(4096, 2);
  const c = patternBytes(4096, 3);
  return makeImage([a, b, new Uint8Array(4096), a, c, b]);
}

describe('BlockMeasurer', () => {
  it('logs each distinct block once, the first time a reader uses it, however often it is read', async () => {
    const img = image();
    const log = new MeasurementLog();
    const measurer = new BlockMeasurer({ log }, img.decoded.digest);
    const reader = new ImageReader(
      { index: img.decoded.index, blocks: blocksOf(img.source), observers: [measurer.observe] },
      { readaheadBlocks: 0 },
    );
    const buf = Buffer.alloc(6 * 4096);
    for (let round = 0; round < 5; round++) {
      await reader.read(buf, 4096, 0); // block 0
      await reader.read(buf, 100, 4096 + 7); // block 1
      await reader.read(buf, 2 * 4096, 2 * 4096); // blocks 2 (zero) and 3 (= block 0)
    }
    expect(reader.counters.reads).toBe(15);
    const ids = (i: number) => img.decoded.index.ref(i)?.id as string;
    expect(parseLog(log.text()).map((e) => e.event)).toEqual([
      { template: 'thfc-block', index: img.decoded.digest, block: `sha1:${ids(0)}` },
      { template: 'thfc-block', index: img.decoded.digest, block: `sha1:${ids(1)}` },
    ]);
    await reader.read(buf, buf.length, 0); // everything: only block 4 is new
    expect(measurer.measured).toBe(3);
    expect(parseLog(log.text()).map((e) => e.event.template === 'thfc-block' && e.event.block)).toEqual(
      [0, 1, 4].map((i) => `sha1:${ids(i)}`),
    );
  });

  it('read-ahead alone measures nothing: only what a reader asked for is "used"', async () => {
    const img = image();
    const log = new MeasurementLog();
    const measurer = new BlockMeasurer({ log }, img.decoded.digest);
    const reader = new ImageReader(
      { index: img.decoded.index, blocks: blocksOf(img.source), observers: [measurer.observe] },
      { readaheadBlocks: 4 },
    );
    const stream = newReadStream();
    const buf = Buffer.alloc(4096);
    for (let i = 0; i < 3; i++) await reader.read(buf, 4096, i * 4096, stream); // blocks 0, 1, 2 (zero)
    await new Promise((r) => setTimeout(r, 20));
    expect(reader.counters.readaheadIssued).toBeGreaterThan(0); // block 4 among them
    expect(measurer.measured).toBe(2);
    expect(log.length).toBe(2);
  });
});
