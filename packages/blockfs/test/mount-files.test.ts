import { MeasurementLog, type PcrExtender } from '@thfc/attest';
import { afterEach, describe, expect, it } from 'vitest';
import type { ImageSet } from '../src/build-images.js';
import type { MountStatus } from '../src/mount.js';
import { mountFiles } from '../src/mount-files.js';
import { deferred, makeImage, patternBytes, tempDir } from './image-fixtures.js';
import { buildImageSet } from './image-set.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const a = makeImage([patternBytes(4096, 20), patternBytes(4096, 21), patternBytes(1000, 22)], { name: 'a' });
const b = makeImage([patternBytes(4096, 23)], { name: 'b' });

async function twoImages(measurements: MeasurementLog): Promise<ImageSet> {
  const t = await tempDir('thfc-mount-files-');
  cleanups.push(t.cleanup);
  const set = await buildImageSet(
    t.dir,
    [
      { image: a, name: 'a' },
      { image: b, name: 'b' },
    ],
    { measureBlocks: true },
    { measurements },
  );
  cleanups.push(() => set.close());
  return set;
}

const statusOf = (set: ImageSet) => (): MountStatus => ({ mountpoint: '/mnt/x', switch: null, ...set.status() });

/** An extender that holds every extend until release() is called. */
class HeldExtender implements PcrExtender {
  private gate = deferred();
  readonly calls: number[] = [];
  extend(pcr: number): Promise<void> {
    this.calls.push(pcr);
    return this.gate.promise;
  }
  release(): void {
    this.gate.resolve();
  }
  toString(): string {
    return 'held';
  }
}

describe('mountFiles', () => {
  it('shows each image by name and size, and its handles read the image’s bytes (now, too, without a TPM)', async () => {
    const measurements = new MeasurementLog();
    const set = await twoImages(measurements);
    const files = mountFiles(set.images, measurements, statusOf(set));
    expect(files.images.map((f) => [f.name, f.size])).toEqual([
      ['a', a.bytes.length],
      ['b', b.bytes.length],
    ]);
    const handle = files.images[0]?.open({ direct: false });
    const buf = Buffer.alloc(a.bytes.length);
    expect(await handle?.read(buf, buf.length, 0)).toBe(a.bytes.length);
    expect(buf.equals(a.bytes)).toBe(true);
    expect(handle?.readNow).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the writes behind land: a warm read is answered now
    const now = Buffer.alloc(4096);
    const n = handle?.readNow?.(now, 4096, 4096);
    if (n !== undefined) expect(now.subarray(0, n).equals(a.bytes.subarray(4096, 4096 + n))).toBe(true);
    // Measured on first use: the three blocks of a.
    expect(measurements.length).toBe(3);
  });

  it('with a TPM, a read is answered only once its measurements are in, and never now', async () => {
    const extender = new HeldExtender();
    const measurements = new MeasurementLog({ extender });
    const set = await twoImages(measurements);
    const handle = mountFiles(set.images, measurements, statusOf(set)).images[1]?.open({ direct: false });
    expect(handle?.readNow).toBeUndefined();
    // The block fetched and cached beforehand (no reader sees it, so nothing is measured): the read waits on the TPM alone.
    const s = set.images[1];
    const ref = s?.index.ref(0);
    if (ref) await s?.blocks.load(ref);
    const buf = Buffer.alloc(4096);
    let answered = false;
    const reading = handle?.read(buf, 4096, 0).then((n) => {
      answered = true;
      return n;
    });
    for (let i = 0; i < 50 && extender.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(extender.calls.length).toBeGreaterThan(0);
    expect(answered).toBe(false);
    extender.release();
    expect(await reading).toBe(4096);
    expect(buf.equals(b.bytes)).toBe(true);
  });

  it('.thfc holds stats.json, the measurement log and one NAME.update per image, each read afresh', async () => {
    const measurements = new MeasurementLog();
    const set = await twoImages(measurements);
    const files = mountFiles(set.images, measurements, statusOf(set));
    expect(files.status.map((f) => f.name)).toEqual(['stats.json', 'measurements', 'a.update', 'b.update']);
    const stats = () => files.status[0]?.content().toString() ?? '';
    expect(stats().endsWith('}\n')).toBe(true);
    expect(JSON.parse(stats())).toMatchObject({
      mountpoint: '/mnt/x',
      pid: process.pid,
      images: [{ name: 'a' }, { name: 'b' }],
    });
    expect(files.status[1]?.content().toString()).toBe('');
    await set.images[0]?.reader.read(Buffer.alloc(100), 100, 0);
    expect(JSON.parse(stats()).images[0].reads).toBe(1);
    expect(files.status[1]?.content().toString()).toBe(measurements.text());
    expect(files.status[1]?.content().length).toBeGreaterThan(0);
    // No version check (no --check-interval): the update files are empty.
    expect(files.status[2]?.content().toString()).toBe('');
  });
});
