/**
 * The three columns an index's entries are kept in (ids, `idLength` bytes an
 * entry; codec codes; stored sizes), copied into room for `cap` entries.
 * Shared by IndexBuilder and the streaming index parser, which both grow
 * their columns as entries arrive.
 */
export function grownColumns(
  ids: Uint8Array,
  codes: Uint8Array,
  sizes: Uint32Array,
  cap: number,
  idLength: number,
): [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>, Uint32Array<ArrayBuffer>] {
  const grownIds = new Uint8Array(cap * idLength);
  grownIds.set(ids);
  const grownCodes = new Uint8Array(cap);
  grownCodes.set(codes);
  const grownSizes = new Uint32Array(cap);
  grownSizes.set(sizes);
  return [grownIds, grownCodes, grownSizes];
}
