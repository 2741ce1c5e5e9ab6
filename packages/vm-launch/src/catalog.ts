import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '@thfc/format';
import { CatalogFormatError } from './errors.js';
import type { DiskBus, Net } from './vm-spec.js';

/**
 * The catalog: the original's "Selection Menu of OS" as a file published
 * beside the indexes (STORE/catalog.json, maintained by `thfc-pack catalog`).
 * This is its strict reader; a bad field is named by its JSON path.
 *
 *   { "format": "thfc-catalog", "version": 1,
 *     "images": [ { "name": "debian", "index": "debian.idx", "description": "…",
 *                   "boot": { "mem": 512, "cpus": 1, "kernel": "boot/vmlinux", "initrd": "boot/initrd.gz",
 *                             "append": "console=ttyS0 root=/dev/vda", "diskBus": "virtio", "net": "user" } } ] }
 *
 * index, kernel and initrd are URLs relative to the catalog's own URL (or absolute).
 */

export const CATALOG_FORMAT = 'thfc-catalog';
export const CATALOG_VERSION = 1;
/** The file name `thfc-pack catalog` writes in a store, and what a bare store URL is completed with. */
export const CATALOG_FILE = 'catalog.json';
/** Same rule as image names in the index format: safe as a file name, a VM name and a menu label. */
export const CATALOG_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface BootDefaults {
  readonly mem?: number | undefined;
  readonly cpus?: number | undefined;
  readonly kernel?: string | undefined;
  readonly initrd?: string | undefined;
  readonly append?: string | undefined;
  readonly diskBus?: DiskBus | undefined;
  readonly net?: Net | undefined;
}

export interface CatalogEntry {
  readonly name: string;
  readonly index: string;
  readonly description: string;
  readonly boot: BootDefaults;
}

export interface Catalog {
  readonly images: readonly CatalogEntry[];
}

/** An entry with its URLs made absolute against the catalog's location. */
export interface ResolvedEntry extends CatalogEntry {
  readonly indexUrl: string;
  readonly kernelUrl?: string | undefined;
  readonly initrdUrl?: string | undefined;
  readonly catalogUrl: string;
}

const ENTRY_KEYS = new Set(['name', 'index', 'description', 'boot']);
const BOOT_KEYS = new Set(['mem', 'cpus', 'kernel', 'initrd', 'append', 'diskBus', 'net']);

export function decodeCatalog(text: string, source: string): Catalog {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CatalogFormatError(source, undefined, `not JSON (${(e as Error).message})`);
  }
  const bad = (field: string | undefined, reason: string) => new CatalogFormatError(source, field, reason);
  if (!isObject(raw)) throw bad(undefined, 'expected a JSON object');
  if (raw.format !== CATALOG_FORMAT) throw bad('format', `expected "${CATALOG_FORMAT}"`);
  if (raw.version !== CATALOG_VERSION)
    throw bad('version', `unsupported version ${JSON.stringify(raw.version)} (this thfc-vm reads ${CATALOG_VERSION})`);
  if (!Array.isArray(raw.images)) throw bad('images', 'expected an array');
  const seen = new Set<string>();
  const images = raw.images.map((e: unknown, i: number): CatalogEntry => {
    const at = `images[${i}]`;
    if (!isObject(e)) throw bad(at, 'expected an object');
    for (const k of Object.keys(e)) if (!ENTRY_KEYS.has(k)) throw bad(`${at}.${k}`, 'unknown field');
    if (typeof e.name !== 'string' || !CATALOG_NAME_PATTERN.test(e.name))
      throw bad(`${at}.name`, 'expected 1-64 letters, digits, dots, dashes or underscores');
    if (seen.has(e.name)) throw bad(`${at}.name`, `"${e.name}" appears twice`);
    seen.add(e.name);
    if (typeof e.index !== 'string' || e.index === '') throw bad(`${at}.index`, 'expected the index URL');
    if (e.description !== undefined && typeof e.description !== 'string')
      throw bad(`${at}.description`, 'expected a string');
    return {
      name: e.name,
      index: e.index,
      description: (e.description as string | undefined) ?? '',
      boot: decodeBoot(e.boot, `${at}.boot`, bad),
    };
  });
  return { images };
}

function decodeBoot(v: unknown, at: string, bad: (field: string, reason: string) => CatalogFormatError): BootDefaults {
  if (v === undefined) return {};
  if (!isObject(v)) throw bad(at, 'expected an object');
  for (const k of Object.keys(v)) if (!BOOT_KEYS.has(k)) throw bad(`${at}.${k}`, 'unknown field');
  const int = (k: string, min: number) => {
    const x = v[k];
    if (x === undefined) return undefined;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min)
      throw bad(`${at}.${k}`, `expected an integer >= ${min}`);
    return x;
  };
  const str = (k: string) => {
    const x = v[k];
    if (x === undefined) return undefined;
    if (typeof x !== 'string' || x === '') throw bad(`${at}.${k}`, 'expected a non-empty string');
    return x;
  };
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T | undefined => {
    const x = v[k];
    if (x === undefined) return undefined;
    if (!allowed.includes(x as T)) throw bad(`${at}.${k}`, `expected one of ${allowed.join(', ')}`);
    return x as T;
  };
  return {
    mem: int('mem', 16),
    cpus: int('cpus', 1),
    kernel: str('kernel'),
    initrd: str('initrd'),
    append: typeof v.append === 'string' ? v.append : str('append'),
    diskBus: oneOf('diskBus', ['virtio', 'ide'] as const),
    net: oneOf('net', ['user', 'none'] as const),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** http(s):// or file:// (a URL) versus a local path. */
export function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s);
}

/**
 * A catalog location as a URL: URLs stay, a path becomes file://, and a
 * location without a .json file name (a store directory or its base URL)
 * gets catalog.json appended.
 */
export function catalogUrl(location: string, cwd: string): string {
  const url = isUrl(location)
    ? new URL(location)
    : pathToFileURL(isAbsolute(location) ? location : resolve(cwd, location));
  if (!url.pathname.endsWith('.json')) url.pathname = `${url.pathname.replace(/\/?$/, '/')}${CATALOG_FILE}`;
  return url.href;
}

export function resolveEntry(entry: CatalogEntry, catalogHref: string): ResolvedEntry {
  const abs = (rel: string | undefined) => (rel === undefined ? undefined : new URL(rel, catalogHref).href);
  return {
    ...entry,
    catalogUrl: catalogHref,
    indexUrl: new URL(entry.index, catalogHref).href,
    kernelUrl: abs(entry.boot.kernel),
    initrdUrl: abs(entry.boot.initrd),
  };
}

export function findEntry(catalog: Catalog, name: string, source: string): CatalogEntry {
  const e = catalog.images.find((x) => x.name === name);
  if (e) return e;
  const names = catalog.images.map((x) => x.name);
  throw new UsageError(
    `no image named "${name}" in ${source}${names.length ? ` (it has: ${names.join(', ')})` : ' (it is empty)'}`,
  );
}
