import { CatalogFormatError } from './errors.js';

/**
 * The catalog (docs/FORMAT.md §12): the menu of images a store offers, the
 * original's "Selection Menu of OS", published as STORE/catalog.json beside
 * the indexes. `thfc-pack catalog` writes it through encodeCatalog and
 * thfc-vm reads it through decodeCatalog, so both sides hold one rule.
 *
 *   { "format": "thfc-catalog", "version": 1,
 *     "images": [ { "name": "debian", "index": "debian.idx", "description": "…",
 *                   "boot": { "mem": 512, "cpus": 1, "kernel": "boot/vmlinux", "initrd": "boot/initrd.gz",
 *                             "append": "console=ttyS0 root=/dev/vda", "diskBus": "virtio", "net": "user" } } ] }
 *
 * index, kernel and initrd are URLs relative to the catalog's own URL (or
 * absolute). The decoder is strict: an unknown field is named by its JSON
 * path, so a typo is not silently ignored.
 */

export const CATALOG_FORMAT = 'thfc-catalog';
export const CATALOG_VERSION = 1;
/** The file name `thfc-pack catalog` writes in a store, and what a bare store URL is completed with. */
export const CATALOG_FILE = 'catalog.json';
/** Same rule as image names in the index format: safe as a file name, a VM name and a menu label. */
export const CATALOG_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const CATALOG_DISK_BUSES = ['virtio', 'ide'] as const;
export const CATALOG_NETS = ['user', 'none'] as const;

/** An entry's boot defaults; absent keys are left to the command line and thfc-vm's defaults. */
export interface CatalogBoot {
  readonly mem?: number | undefined;
  readonly cpus?: number | undefined;
  readonly kernel?: string | undefined;
  readonly initrd?: string | undefined;
  readonly append?: string | undefined;
  readonly diskBus?: (typeof CATALOG_DISK_BUSES)[number] | undefined;
  readonly net?: (typeof CATALOG_NETS)[number] | undefined;
  /** Keys this version does not know, kept only by a decoder told to keep them (see DecodeCatalogOptions). */
  readonly extra?: Readonly<Record<string, unknown>> | undefined;
}

export interface CatalogEntry {
  readonly name: string;
  readonly index: string;
  /** '' when the file has none. */
  readonly description: string;
  readonly boot: CatalogBoot;
  readonly extra?: Readonly<Record<string, unknown>> | undefined;
}

export interface Catalog {
  readonly images: readonly CatalogEntry[];
  readonly extra?: Readonly<Record<string, unknown>> | undefined;
}

export interface DecodeCatalogOptions {
  /**
   * Keep unknown keys (in `extra`) instead of refusing them: the writer sets
   * it, so that adding an entry keeps what a newer writer put in the others,
   * while a reader refuses a typo rather than boot without it.
   */
  readonly keepUnknownFields?: boolean | undefined;
}

const CATALOG_KEYS = new Set(['format', 'version', 'images']);
const ENTRY_KEYS = new Set(['name', 'index', 'description', 'boot']);
const BOOT_KEYS = new Set(['mem', 'cpus', 'kernel', 'initrd', 'append', 'diskBus', 'net']);

/** Throws CatalogFormatError naming `source` and the JSON path of the bad value. */
export function decodeCatalog(text: string, source: string, options: DecodeCatalogOptions = {}): Catalog {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CatalogFormatError(source, undefined, `not JSON (${(e as Error).message})`);
  }
  const bad = (field: string | undefined, reason: string) => new CatalogFormatError(source, field, reason);
  /** The unknown keys of `o` (at JSON path `at`): refused, or kept when the caller asked. */
  const extraOf = (o: Record<string, unknown>, known: ReadonlySet<string>, at: string) => {
    const unknown = Object.keys(o).filter((k) => !known.has(k));
    if (unknown.length === 0) return {};
    if (!options.keepUnknownFields) throw bad(`${at}${unknown[0]}`, 'unknown field');
    return { extra: Object.fromEntries(unknown.map((k) => [k, o[k]])) };
  };
  if (!isObject(raw)) throw bad(undefined, 'expected a JSON object');
  if (raw.format !== CATALOG_FORMAT) throw bad('format', `expected "${CATALOG_FORMAT}"`);
  if (raw.version !== CATALOG_VERSION)
    throw bad('version', `unsupported version ${JSON.stringify(raw.version)} (this thfc reads ${CATALOG_VERSION})`);
  if (!Array.isArray(raw.images)) throw bad('images', 'expected an array');
  const seen = new Set<string>();
  const images = raw.images.map((e: unknown, i: number): CatalogEntry => {
    const at = `images[${i}]`;
    if (!isObject(e)) throw bad(at, 'expected an object');
    const extra = extraOf(e, ENTRY_KEYS, `${at}.`);
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
      boot: decodeBoot(e.boot, `${at}.boot`, bad, extraOf),
      ...extra,
    };
  });
  return { images, ...extraOf(raw, CATALOG_KEYS, '') };
}

/**
 * The file's text: two-space JSON and a final newline, an entry's empty
 * description and absent boot keys left out, so decode(encode(c)) is c.
 */
export function encodeCatalog(catalog: Catalog): string {
  const images = catalog.images.map((e) => {
    const { extra, ...known } = e.boot;
    const boot = { ...Object.fromEntries(Object.entries(known).filter(([, v]) => v !== undefined)), ...extra };
    return {
      name: e.name,
      index: e.index,
      description: e.description === '' ? undefined : e.description,
      boot: Object.keys(boot).length ? boot : undefined,
      ...e.extra,
    };
  });
  const doc = { format: CATALOG_FORMAT, version: CATALOG_VERSION, images, ...catalog.extra };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function decodeBoot(
  v: unknown,
  at: string,
  bad: (field: string, reason: string) => CatalogFormatError,
  extraOf: (o: Record<string, unknown>, known: ReadonlySet<string>, at: string) => { extra?: Record<string, unknown> },
): CatalogBoot {
  if (v === undefined) return {};
  if (!isObject(v)) throw bad(at, 'expected an object');
  const extra = extraOf(v, BOOT_KEYS, `${at}.`);
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
    diskBus: oneOf('diskBus', CATALOG_DISK_BUSES),
    net: oneOf('net', CATALOG_NETS),
    ...extra,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
