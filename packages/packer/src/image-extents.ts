import { InputError } from './errors.js';

/** A run of the image's bytes: `zero` when they are known to read as zeros without being read (a hole). */
export interface Extent {
  readonly start: number;
  readonly length: number;
  readonly zero: boolean;
}

/** A step of a sparse read plan: `count` whole blocks that are holes, or one block to read. */
export type BlockStep =
  | { readonly kind: 'holes'; readonly count: number; readonly bytes: number }
  | { readonly kind: 'read'; readonly start: number; readonly length: number };

/**
 * Parses `qemu-img map --output=json` into extents. An extent is a hole when
 * qemu says it reads as zeros (`zero`), or when no layer of the image has it
 * (`present: false`, which also reads as zeros). Everything else is read.
 * The extents must tile [0, size) in order: anything else is refused rather
 * than guessed at, since a wrong hole would publish wrong bytes.
 */
export function parseQemuMap(json: string, what: string): { extents: Extent[]; size: number } {
  const bad = (why: string) => new InputError(`${what}: qemu-img map gave ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw bad('output that is not JSON');
  }
  if (!Array.isArray(raw)) throw bad('no list of extents');
  const extents: Extent[] = [];
  let next = 0;
  for (const e of raw as Record<string, unknown>[]) {
    const { start, length } = e ?? {};
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || (length as number) < 0) {
      throw bad(`a bad extent ${JSON.stringify(e).slice(0, 120)}`);
    }
    if (start !== next) throw bad(`an extent at ${start} where ${next} was expected`);
    next += length as number;
    const zero = e.zero === true || e.present === false;
    const last = extents[extents.length - 1];
    if (last && last.zero === zero) extents[extents.length - 1] = { ...last, length: last.length + (length as number) };
    else if ((length as number) > 0) extents.push({ start: start as number, length: length as number, zero });
  }
  return { extents, size: next };
}

/**
 * The read plan of an image of `size` bytes: consecutive blocks lying wholly
 * inside holes are merged into one `holes` step (never read); every other
 * block, even one that is mostly hole, is a `read` step. Pure and lazy, so a
 * 4-million-block image with few extents costs steps, not blocks.
 */
export function* blockSteps(extents: readonly Extent[], size: number, blockSize: number): Generator<BlockStep> {
  let pos = 0;
  let e = 0;
  while (pos < size) {
    // The first extent still covering pos.
    while (e < extents.length && (extents[e] as Extent).start + (extents[e] as Extent).length <= pos) e++;
    const ext = extents[e];
    const length = Math.min(blockSize, size - pos);
    if (ext?.zero) {
      // Whole blocks from pos that end inside this hole; a short last block counts when the hole reaches size.
      const holeEnd = Math.min(ext.start + ext.length, size);
      let count = Math.floor((holeEnd - pos) / blockSize);
      let bytes = count * blockSize;
      if (holeEnd === size && pos + bytes < size) {
        count++;
        bytes = size - pos;
      }
      if (count > 0) {
        yield { kind: 'holes', count, bytes };
        pos += bytes;
        continue;
      }
    }
    yield { kind: 'read', start: pos, length };
    pos += length;
  }
}
