import { isImageName } from './block-path.js';
import { IndexFormatError } from './errors.js';
import { isIndexDigest } from './image-index.js';
import { isPositiveWholeNumber, readJsonDocument } from './json-document.js';

/**
 * Retained image versions (docs/FORMAT.md §5.9). Every index a publisher
 * publishes is also kept as `versions/NAME/<created>-<digest12>.idx`, and
 * `versions/NAME/versions.json` lists them, so that a client pinned to a
 * digest finds its file with one request, on any static server:
 *
 *     {"format":"thfc-versions","version":1,"name":"debian-12","latest":"sha256:<64 hex>",
 *      "versions":[{"file":"20261206T101500Z-0123456789ab.idx","created":"2026-12-06T10:15:00Z",
 *                   "digest":"sha256:<64 hex>","bytes":96171}]}
 *
 * Versions are listed newest first. `latest` is the digest NAME.idx holds
 * (it may be an older version after a rollback).
 */
export const VERSIONS_FORMAT = 'thfc-versions';
export const VERSIONS_VERSION = 1;
/** The directory under a store root that holds retained versions. */
export const VERSIONS_DIR = 'versions';
/** The list's file name inside `versions/NAME/`. */
export const VERSION_LIST_FILE = 'versions.json';
/** A list is ~150 bytes per version; 4 MiB bounds a hostile upstream and allows ~25000 versions. */
export const MAX_VERSION_LIST_BYTES = 4 * 1024 * 1024;

export interface ImageVersion {
  /** The file name inside `versions/NAME/`. */
  readonly file: string;
  /** The index's `created` header (UTC, seconds). */
  readonly created: string;
  /** The index's format digest (§5.6): `sha256:<hex>`. */
  readonly digest: string;
  /** The version file's size. */
  readonly bytes: number;
}

export interface VersionList {
  readonly name: string;
  /** The digest `NAME.idx` holds. */
  readonly latest: string | undefined;
  /** Newest first. */
  readonly versions: readonly ImageVersion[];
}

const CREATED = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const FILE = /^\d{8}T\d{6}Z-[0-9a-f]{12}\.idx$/;

/** `versions/NAME/<created>-<digest12>.idx`'s file name: created as 20261206T101500Z, then 12 hex of the digest. */
export function versionFileName(created: string, digest: string): string {
  const m = CREATED.exec(created);
  if (!m) throw new IndexFormatError(`bad created time "${created}"`, undefined, 'created');
  if (!isIndexDigest(digest)) throw new IndexFormatError(`bad digest "${digest}"`, undefined, 'digest');
  return `${m[1]}${m[2]}${m[3]}T${m[4]}${m[5]}${m[6]}Z-${digest.slice('sha256:'.length, 'sha256:'.length + 12)}.idx`;
}

/** The store-relative path of a version list: `versions/NAME/versions.json`. */
export function versionListPath(name: string): string {
  return `${VERSIONS_DIR}/${name}/${VERSION_LIST_FILE}`;
}

/** Newest first; equal times by digest, so the order is total. */
export function sortVersions(versions: readonly ImageVersion[]): ImageVersion[] {
  return [...versions].sort((a, b) =>
    a.created === b.created ? (a.digest < b.digest ? -1 : 1) : a.created < b.created ? 1 : -1,
  );
}

/**
 * Finds the version a user named: a full `sha256:<hex>`, or a unique hex
 * prefix of at least 12 digits (with or without `sha256:`).
 */
export function findVersion(list: VersionList, spec: string): ImageVersion | undefined {
  const hex = spec.replace(/^sha256:/, '').toLowerCase();
  if (!/^[0-9a-f]{12,64}$/.test(hex)) return undefined;
  const hits = list.versions.filter((v) => v.digest.startsWith(`sha256:${hex}`));
  return hits.length === 1 ? hits[0] : undefined;
}

export function encodeVersionList(list: VersionList): string {
  const versions = sortVersions(list.versions).map(({ file, created, digest, bytes }) => ({
    file,
    created,
    digest,
    bytes,
  }));
  return `${JSON.stringify({ format: VERSIONS_FORMAT, version: VERSIONS_VERSION, name: list.name, latest: list.latest, versions })}\n`;
}

/**
 * Strict on what clients act on (files become paths); unknown keys are
 * ignored so that a later version 1 list may add fields. Throws
 * IndexFormatError naming `source` and the bad field.
 */
export function decodeVersionList(text: string, source: string): VersionList {
  const doc = readJsonDocument(text, source, 'version list', { format: VERSIONS_FORMAT, version: VERSIONS_VERSION });
  const { bad } = doc;
  const { name, latest } = doc.fields;
  if (typeof name !== 'string' || !isImageName(name)) throw bad('name is not an image name');
  if (latest !== undefined && !isIndexDigest(latest)) throw bad('latest is not sha256:<64 hex>');
  const seen = new Set<string>();
  const out = doc.map('versions', ({ file, created, digest, bytes }, i): ImageVersion => {
    if (typeof created !== 'string' || !CREATED.test(created)) throw bad(`versions[${i}].created is not a UTC time`);
    if (!isIndexDigest(digest)) throw bad(`versions[${i}].digest is not sha256:<64 hex>`);
    if (typeof file !== 'string' || !FILE.test(file) || file !== versionFileName(created, digest))
      throw bad(`versions[${i}].file is not "${versionFileName(created, digest)}"`);
    if (!isPositiveWholeNumber(bytes)) throw bad(`versions[${i}].bytes is not a positive whole number`);
    if (seen.has(digest)) throw bad(`versions[${i}]: ${digest} is listed twice`);
    seen.add(digest);
    return { file, created, digest, bytes };
  });
  return { name, latest: latest as string | undefined, versions: sortVersions(out) };
}
