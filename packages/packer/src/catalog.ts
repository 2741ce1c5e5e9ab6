import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import {
  CATALOG_FILE,
  CATALOG_NAME_PATTERN,
  type Catalog,
  type CatalogBoot,
  type CatalogEntry,
  CatalogFormatError,
  decodeCatalog,
  encodeCatalog,
} from '@thfc/format';
import { readIndexFile, writeFileAtomic } from '@thfc/store';
import { fsError, InputError, UsageError } from './errors.js';
import { assertStoreDir, resolveIndexArg } from './store-indexes.js';

/**
 * `thfc-pack catalog add|remove STORE …`: maintains STORE/catalog.json, the
 * list of images thfc-vm's menu offers (the original's "Selection Menu of
 * OS"), published beside the indexes. Entry URLs are relative to the catalog,
 * so the store can be served or mirrored under any base URL.
 *
 * The file goes through @thfc/format's catalog codec, the one thfc-vm reads
 * with: this writer checks everything it adds, keeps the other entries as
 * they are, and refuses to rewrite a catalog that codec refuses.
 */

export interface CatalogAddOptions {
  readonly store: string;
  /** STORE/NAME.idx, or NAME.idx inside STORE. */
  readonly index: string;
  /** Default: the image name in the index header. */
  readonly name?: string | undefined;
  readonly description?: string | undefined;
  /** Boot defaults; kernel and initrd are files inside STORE or http(s) URLs. */
  readonly boot?: CatalogBoot | undefined;
}

export interface CatalogResult {
  readonly catalog: string;
  readonly changed: readonly string[];
  readonly action: 'added' | 'replaced' | 'removed';
  readonly images: number;
}

export async function runCatalogAdd(o: CatalogAddOptions): Promise<CatalogResult> {
  await assertStoreDir(o.store, 'catalog add');
  const indexPath = await resolveIndexArg(o.store, o.index);
  const decoded = await readIndexFile(indexPath);
  const name = o.name ?? decoded.index.header.name;
  if (!CATALOG_NAME_PATTERN.test(name))
    throw new UsageError(`catalog name "${name}": use 1-64 letters, digits, dots, dashes or underscores (--name)`);
  const entry: CatalogEntry = {
    name,
    index: await inStore(o.store, indexPath, 'index'),
    description: o.description ?? '',
    boot: await bootEntry(o.store, o.boot ?? {}),
  };

  const path = join(o.store, CATALOG_FILE);
  const old = await readCatalog(path);
  const images = [...old.images];
  const at = images.findIndex((e) => e.name === name);
  if (at >= 0) images[at] = entry;
  else images.push(entry);
  await writeCatalog(path, { ...old, images });
  return { catalog: path, changed: [name], action: at >= 0 ? 'replaced' : 'added', images: images.length };
}

export async function runCatalogRemove(o: { store: string; names: readonly string[] }): Promise<CatalogResult> {
  await assertStoreDir(o.store, 'catalog remove');
  if (o.names.length === 0) throw new UsageError('name at least one entry to remove');
  const path = join(o.store, CATALOG_FILE);
  const old = await readCatalog(path);
  const { images } = old;
  const missing = o.names.filter((n) => !images.some((e) => e.name === n));
  if (missing.length)
    throw new UsageError(
      `no entry named ${missing.join(', ')} in ${path} (it has: ${images.map((e) => e.name).join(', ') || 'nothing'})`,
    );
  const left = images.filter((e) => !o.names.includes(e.name));
  await writeCatalog(path, { ...old, images: left });
  return { catalog: path, changed: [...o.names], action: 'removed', images: left.length };
}

/** The existing catalog, or an empty one; never a file this writer would misunderstand. */
async function readCatalog(path: string): Promise<Catalog> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { images: [] };
    throw fsError(e, path);
  }
  try {
    return decodeCatalog(text, path, { keepUnknownFields: true });
  } catch (e) {
    if (e instanceof CatalogFormatError) throw new InputError(`${e.message}; fix or remove it`);
    throw e;
  }
}

/** Temp file + rename: a mirror or a client reading the catalog sees the old one or the new one. */
async function writeCatalog(path: string, catalog: Catalog): Promise<void> {
  await writeFileAtomic(path, Buffer.from(encodeCatalog(catalog)), { durable: true });
}

/** `path` (a file inside STORE) as a URL path relative to the catalog. */
async function inStore(store: string, path: string, what: string): Promise<string> {
  const rel = relative(resolve(store), resolve(path));
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new UsageError(
      `${what} ${path} is outside ${store}: the catalog is published with the store, so copy it into the store first`,
    );
  return rel.split(sep).map(encodeURIComponent).join('/');
}

/** The boot defaults as given on the command line, checked; kernel and initrd become URLs inside STORE. */
async function bootEntry(store: string, b: CatalogBoot): Promise<CatalogBoot> {
  const out: { -readonly [K in keyof CatalogBoot]: CatalogBoot[K] } = {};
  if (b.mem !== undefined) {
    if (!Number.isInteger(b.mem) || b.mem < 16) throw new UsageError(`--mem ${b.mem}: whole MiB, at least 16`);
    out.mem = b.mem;
  }
  if (b.cpus !== undefined) {
    if (!Number.isInteger(b.cpus) || b.cpus < 1) throw new UsageError(`--cpus ${b.cpus}: a whole number >= 1`);
    out.cpus = b.cpus;
  }
  for (const key of ['kernel', 'initrd'] as const) {
    const v = b[key];
    if (v === undefined) continue;
    if (/^https?:\/\//i.test(v)) {
      out[key] = v;
      continue;
    }
    // A path is taken relative to STORE first (boot/vmlinux), then as given.
    const inside = isAbsolute(v) ? v : join(store, v);
    const found = (await stat(inside).catch(() => undefined))?.isFile()
      ? inside
      : (await stat(v).catch(() => undefined))?.isFile()
        ? v
        : undefined;
    if (!found) throw new InputError(`--${key} ${v}: no such file in ${store} (or give an http(s) URL)`);
    out[key] = await inStore(store, found, `--${key}`);
  }
  if (b.append !== undefined) {
    if (out.kernel === undefined)
      throw new UsageError('--append needs --kernel (a command line for direct kernel boot)');
    out.append = b.append;
  }
  if (b.initrd !== undefined && out.kernel === undefined) throw new UsageError('--initrd needs --kernel');
  if (b.diskBus !== undefined) {
    if (b.diskBus !== 'virtio' && b.diskBus !== 'ide') throw new UsageError(`--disk-bus must be virtio or ide`);
    out.diskBus = b.diskBus;
  }
  if (b.net !== undefined) {
    if (b.net !== 'user' && b.net !== 'none') throw new UsageError(`--net must be user or none`);
    out.net = b.net;
  }
  return out;
}
