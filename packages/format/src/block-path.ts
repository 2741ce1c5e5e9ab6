import { isBlockId } from './block-id.js';
import { InvalidArgumentError } from './errors.js';

/**
 * The one rule that says where a block lives in a store, relative to the
 * store root: `blocks/ab/abcdef…`, sharded by the first hex pair so no
 * directory holds more than 1/256 of the blocks. It is the same for a
 * directory, an HTTP mirror, a CDN or the client's disk cache.
 */
export function blockPath(id: string): string {
  if (!isBlockId(id)) throw new InvalidArgumentError(`not a block name: "${id}"`);
  return `blocks/${id.slice(0, 2)}/${id}`;
}

/** Image names become file names in stores and on mounts, so they are kept to a safe alphabet. */
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export function isImageName(name: string): boolean {
  return IMAGE_NAME.test(name) && !name.endsWith('.idx');
}

export function assertImageName(name: string): string {
  if (!isImageName(name)) {
    throw new InvalidArgumentError(
      `bad image name "${name}": use 1-128 of A-Z a-z 0-9 . _ + -, starting with a letter or digit, not ending in .idx`,
    );
  }
  return name;
}

/** `NAME.idx`, the index's file name in a store. */
export function indexFileName(name: string): string {
  return `${assertImageName(name)}.idx`;
}
