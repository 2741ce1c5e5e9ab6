import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CATALOG_FILE, type Catalog, type CatalogEntry, UsageError } from '@thfc/format';

/**
 * Where thfc-vm finds a catalog (the codec is @thfc/format's catalog.ts) and
 * how its entries' relative URLs become absolute.
 */

/** An entry with its URLs made absolute against the catalog's location. */
export interface ResolvedEntry extends CatalogEntry {
  readonly indexUrl: string;
  readonly kernelUrl?: string | undefined;
  readonly initrdUrl?: string | undefined;
  readonly catalogUrl: string;
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
