import { isImageName, isIndexDigest, isPositiveWholeNumber, readJsonDocument } from '@thfc/format';

/**
 * The store listing: `GET /index.json` on a mirror names every published
 * index, so `sync` can replicate "everything" and skip what it already has
 * without downloading it. Its prose twin is docs/FORMAT.md, "Mirror protocol".
 *
 *     {"format":"thfc-store-listing","version":1,"indexes":[
 *       {"name":"debian-12","file":"debian-12.idx","bytes":96171,
 *        "sha256":"<64 hex: the file's bytes>","digest":"sha256:<64 hex: FORMAT.md §5.6>",
 *        "profile":null,"versions":["sha256:<64 hex>"]}]}
 *
 * `profile` and `versions` say what else the store holds for the image, so
 * a replica whose copies match asks for neither: `null` / `[]` mean none.
 * They are optional: a listing without them (an older mirror, a hand-made
 * file on a static server) means "not said", and a replica asks as before.
 */
export const LISTING_FORMAT = 'thfc-store-listing';
export const LISTING_VERSION = 1;

/**
 * Versions named in a listing entry at most. A store keeps a few versions
 * per image (retention); one with more is listed without `versions`, and a
 * replica reads its version list as before, so a listing stays ~300 bytes an image.
 */
export const MAX_LISTED_VERSIONS = 64;

/** A listing is ~200 bytes per index; 16 MiB is ~80000 images, and stops a hostile upstream from streaming forever. */
export const MAX_LISTING_BYTES = 16 * 1024 * 1024;

export interface ListingEntry {
  /** The image name; the index is `<name>.idx` next to the listing. */
  readonly name: string;
  readonly file: string;
  readonly bytes: number;
  /** Hex SHA-256 of the index file, signatures included: equal means byte-identical. */
  readonly sha256: string;
  /** The index's identity (`sha256:<hex>`), unchanged by signatures. */
  readonly digest: string;
  /** NAME.profile: its size and hex SHA-256; null when the store has none; undefined when not said. */
  readonly profile?: ListedFile | null | undefined;
  /** Digests of the retained versions (versions/NAME/versions.json), newest first; [] when none; undefined when not said. */
  readonly versions?: readonly string[] | undefined;
}

export interface ListedFile {
  readonly bytes: number;
  readonly sha256: string;
}

export function encodeListing(indexes: readonly ListingEntry[]): string {
  const entries = indexes.map(({ name, file, bytes, sha256, digest, profile, versions }) => ({
    name,
    file,
    bytes,
    sha256,
    digest,
    ...(profile !== undefined && { profile: profile && { bytes: profile.bytes, sha256: profile.sha256 } }),
    ...(versions !== undefined && { versions }),
  }));
  return `${JSON.stringify({ format: LISTING_FORMAT, version: LISTING_VERSION, indexes: entries })}\n`;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Strict on everything sync acts on (names become file names in the local
 * store); unknown keys are ignored, so a later version can add fields.
 * Throws IndexFormatError naming `source` and the bad entry.
 */
export function decodeListing(text: string, source: string): ListingEntry[] {
  const doc = readJsonDocument(text, source, 'store listing', { format: LISTING_FORMAT, version: LISTING_VERSION });
  const { bad } = doc;
  const seen = new Set<string>();
  return doc.map('indexes', ({ name, file, bytes, sha256, digest, profile, versions }, i) => {
    if (typeof name !== 'string' || !isImageName(name)) throw bad(`indexes[${i}].name is not an image name`);
    if (file !== `${name}.idx`) throw bad(`indexes[${i}].file is not "${name}.idx"`);
    if (!isPositiveWholeNumber(bytes)) throw bad(`indexes[${i}].bytes is not a positive whole number`);
    if (typeof sha256 !== 'string' || !HEX64.test(sha256)) throw bad(`indexes[${i}].sha256 is not 64 hex digits`);
    if (!isIndexDigest(digest)) throw bad(`indexes[${i}].digest is not sha256:<64 hex>`);
    if (seen.has(name)) throw bad(`indexes[${i}]: "${name}" is listed twice`);
    seen.add(name);
    return {
      name,
      file,
      bytes: bytes as number,
      sha256,
      digest,
      ...listedProfile(profile, i, bad),
      ...listedVersions(versions, i, bad),
    };
  });
}

function listedProfile(profile: unknown, i: number, bad: (why: string) => Error): { profile?: ListedFile | null } {
  if (profile === undefined) return {};
  if (profile === null) return { profile: null };
  const p = profile as Record<string, unknown>;
  const size = p.bytes;
  if (
    typeof size !== 'number' ||
    !Number.isSafeInteger(size) ||
    size < 0 ||
    typeof p.sha256 !== 'string' ||
    !HEX64.test(p.sha256)
  ) {
    throw bad(`indexes[${i}].profile is neither null nor {"bytes":<size>,"sha256":<64 hex>}`);
  }
  return { profile: { bytes: size, sha256: p.sha256 } };
}

function listedVersions(versions: unknown, i: number, bad: (why: string) => Error): { versions?: readonly string[] } {
  if (versions === undefined) return {};
  if (!Array.isArray(versions) || versions.length > MAX_LISTED_VERSIONS || !versions.every(isIndexDigest)) {
    throw bad(`indexes[${i}].versions is not a list of at most ${MAX_LISTED_VERSIONS} sha256:<64 hex> digests`);
  }
  return { versions: versions as string[] };
}
