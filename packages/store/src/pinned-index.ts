import {
  type DecodedIndex,
  decodeIndex,
  decodeVersionList,
  findVersion,
  IndexFormatError,
  isIndexDigest,
  PinRefusedError,
  UsageError,
  VERSIONS_DIR,
  versionListPath,
} from '@thfc/format';

/** A pin as given (`sha256:<64 hex>`), checked; undefined when none. Both forms given must agree. */
export function choosePin(fromUrl: string | undefined, fromOption: string | undefined): string | undefined {
  for (const p of [fromUrl, fromOption])
    if (p !== undefined && !isIndexDigest(p))
      throw new UsageError(`bad pin "${p}": expected sha256:<64 lowercase hex>`);
  if (fromUrl !== undefined && fromOption !== undefined && fromUrl !== fromOption)
    throw new UsageError(`the URL is pinned to ${fromUrl} and --pin says ${fromOption}: give one`);
  return fromUrl ?? fromOption;
}

/**
 * The pinned version of an image, from what the index location served
 * (`current`, usually the latest) and the store's retained versions
 * (docs/FORMAT.md §5.9). `fetch` reads a path relative to the index's
 * directory. Whatever arrives must carry the pinned digest: a mirror cannot
 * substitute another version, older (rollback) or newer.
 */
export async function resolvePinned(
  current: DecodedIndex,
  pin: string,
  fetch: (relative: string) => Promise<Uint8Array>,
  where: string,
): Promise<{ decoded: DecodedIndex; latest: string }> {
  if (current.digest === pin) return { decoded: current, latest: current.digest };
  const name = current.index.header.name;
  const refuse = (why: string) =>
    new PinRefusedError(`${where}: pinned to ${pin}, but ${why}; refusing to mount another version`);
  let listBytes: Uint8Array;
  try {
    listBytes = await fetch(versionListPath(name));
  } catch (e) {
    throw refuse(
      `the index is ${current.digest} and the store's version list cannot be read (${(e as Error).message})`,
    );
  }
  const list = decodeVersionList(Buffer.from(listBytes).toString('utf8'), `${where} (${versionListPath(name)})`);
  const version = findVersion(list, pin);
  if (!version || version.digest !== pin)
    throw refuse(`the store publishes ${current.digest} and keeps no such version of ${name}`);
  const bytes = await fetch(`${VERSIONS_DIR}/${name}/${version.file}`);
  let decoded: DecodedIndex;
  try {
    decoded = decodeIndex(bytes);
  } catch (e) {
    if (e instanceof IndexFormatError) throw refuse(`its retained copy ${version.file} is damaged (${e.message})`);
    throw e;
  }
  if (decoded.digest !== pin) throw refuse(`its retained copy ${version.file} holds ${decoded.digest}`);
  if (decoded.index.header.name !== name)
    throw refuse(`its retained copy ${version.file} is of image ${decoded.index.header.name}`);
  return { decoded, latest: current.digest };
}
