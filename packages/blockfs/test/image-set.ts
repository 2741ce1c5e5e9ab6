import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MeasurementLog } from '@thfc/attest';
import { blockPath } from '@thfc/format';
import { type Logger, loadIndex, SILENT_LOGGER } from '@thfc/store';
import { buildImages, type ImageOptions, type ImageSet } from '../src/build-images.js';
import type { TestImage } from './image-fixtures.js';

/** A store directory holding the image's blocks and its index, NAME.idx; returns the index's path. */
export async function publishImage(dir: string, image: TestImage, name: string): Promise<string> {
  for (const [id, stored] of image.source.blocks) {
    await mkdir(dirname(join(dir, blockPath(id))), { recursive: true });
    await writeFile(join(dir, blockPath(id)), stored);
  }
  await writeFile(join(dir, `${name}.idx`), image.indexBytes);
  return join(dir, `${name}.idx`);
}

/**
 * The images published to DIR/store and built as a mount builds them
 * (buildImages over a disk cache in DIR/cache), from their local indexes.
 * Close the set when done.
 */
export async function buildImageSet(
  dir: string,
  images: readonly { image: TestImage; name: string }[],
  options: Partial<ImageOptions> = {},
  components: { logger?: Logger; measurements?: MeasurementLog } = {},
): Promise<ImageSet> {
  await mkdir(join(dir, 'store'), { recursive: true });
  const loaded = [];
  for (const { image, name } of images)
    loaded.push(await loadIndex(await publishImage(join(dir, 'store'), image, name), {}));
  return buildImages(
    loaded,
    { indexes: images.map((i) => i.name), ...options },
    {
      logger: components.logger ?? SILENT_LOGGER,
      dispatcher: undefined,
      cacheDir: options.nocache ? undefined : join(dir, 'cache'),
      mirrorBases: undefined,
      measurements: components.measurements ?? new MeasurementLog(),
    },
  );
}
