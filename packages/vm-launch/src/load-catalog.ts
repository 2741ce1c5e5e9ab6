import { type Catalog, decodeCatalog } from '@thfc/format';
import { catalogUrl, type ResolvedEntry, resolveEntry } from './catalog.js';
import { readLocation } from './locations.js';

/** Reads and decodes the catalog at LOCATION (URL, path, or store); entries come back with absolute URLs. */
export async function loadCatalog(
  location: string,
  o: { cwd: string; signal: AbortSignal },
): Promise<{ href: string; catalog: Catalog; entries: ResolvedEntry[] }> {
  const href = catalogUrl(location, o.cwd);
  const catalog = decodeCatalog((await readLocation(href, o.signal)).toString('utf8'), href);
  return { href, catalog, entries: catalog.images.map((e) => resolveEntry(e, href)) };
}
