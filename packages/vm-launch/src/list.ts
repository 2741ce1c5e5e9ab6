import { loadCatalog } from './load-catalog.js';
import { renderList } from './menu.js';
import type { VmIo } from './vm-io.js';

/** `thfc-vm list [CATALOG]`: the catalog's entries, numbered as the menu numbers them. */
export async function runList(o: { catalog: string; json?: boolean | undefined }, io: VmIo): Promise<void> {
  const { href, entries } = await loadCatalog(o.catalog, { cwd: io.cwd, signal: io.signal });
  if (o.json) {
    io.stdout.write(`${JSON.stringify({ catalog: href, images: entries })}\n`);
    return;
  }
  io.stdout.write(renderList(entries.map((e) => ({ name: e.name, description: e.description, index: e.indexUrl }))));
}
