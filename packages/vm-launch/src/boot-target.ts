import { open, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { UsageError } from '@thfc/format';
import { findEntry, type ResolvedEntry, resolveEntry } from './catalog.js';
import { classifyImage } from './image-ref.js';
import { loadCatalog } from './load-catalog.js';
import { localPath } from './locations.js';
import type { VmIo } from './vm-io.js';

/** What a boot boots: IMAGE resolved to a disk file or an index to mount, with its catalog entry if any. */
export interface Target {
  readonly kind: 'file' | 'index';
  readonly source: 'file' | 'index' | 'catalog';
  /** The disk path (file) or the index location (index). */
  readonly location: string;
  /** The image's name: the catalog entry's, else the file's or the index's. */
  readonly name: string;
  /** The file name httpstorged will show the image under (predicted for --dry-run; the run reads the mount). */
  readonly diskName: string;
  readonly entry?: ResolvedEntry | undefined;
}

/** The name httpstorged will show an index under: NAME of NAME.idx (thfc-pack names indexes after their image). */
export function nameOfIndex(location: string): string {
  const last = basename(decodeURIComponent(location.replace(/[?#].*$/, '').replace(/\/+$/, '')));
  return last.replace(/\.idx$/, '') || 'image';
}

export async function resolveTarget(
  o: { image: string; catalog?: string | undefined; entry?: ResolvedEntry | undefined; pool?: boolean | undefined },
  io: VmIo,
): Promise<Target> {
  if (o.entry) return catalogTarget(o.entry);
  // IMAGE#sha256:HEX pins an index (docs/httpstorged.md, Pinned versions): classified without the pin.
  const pinned = /^(.+?)(#sha256:[0-9a-f]{64})$/.exec(o.image);
  const image = pinned ? (pinned[1] as string) : o.image;
  const pin = pinned?.[2] ?? '';
  const abs = resolve(io.cwd, image);
  const st = await stat(abs).catch(() => undefined);
  const ref = classifyImage(image, {
    isFile: !!st?.isFile() || !!st?.isBlockDevice(),
    looksLikeIndex: st?.isFile() ? await startsLikeIndex(abs) : false,
    hasCatalog: o.catalog !== undefined,
    isDirectory: !!st?.isDirectory(),
    hasPool: o.pool,
  });
  if (ref.kind === 'file') {
    if (pin) throw new UsageError(`${o.image}: a #sha256: pin names a version of an index, not of a disk file`);
    const name = basename(abs).replace(/\.(img|raw|iso)$/, '');
    return { kind: 'file', source: 'file', location: abs, name, diskName: basename(abs) };
  }
  if (ref.kind === 'index') {
    const pooled = o.pool && !st && !ref.url.includes('/');
    const location = /^[a-z][a-z0-9+.-]*:\/\//i.test(ref.url) || pooled ? ref.url : abs;
    return {
      kind: 'index',
      source: 'index',
      location: `${location}${pin}`,
      name: nameOfIndex(location),
      diskName: nameOfIndex(location),
    };
  }
  const { href, catalog } = await loadCatalog(o.catalog as string, { cwd: io.cwd, signal: io.signal });
  return catalogTarget(resolveEntry(findEntry(catalog, ref.name, href), href));
}

export function catalogTarget(entry: ResolvedEntry): Target {
  const location = indexArg(entry.indexUrl);
  return { kind: 'index', source: 'catalog', location, name: entry.name, diskName: nameOfIndex(location), entry };
}

/** httpstorged takes http(s) URLs and paths; a `#sha256:…` pin (docs/httpstorged.md) stays on either. */
function indexArg(url: string): string {
  const path = localPath(url);
  if (path === undefined) return url;
  const pin = /#sha256:[0-9a-f]{64}$/.exec(url)?.[0] ?? '';
  return `${path}${pin}`;
}

async function startsLikeIndex(path: string): Promise<boolean> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    const b = Buffer.alloc(11);
    const { bytesRead } = await fh.read(b, 0, 11, 0);
    return b.subarray(0, bytesRead).toString('latin1') === 'thfc-index ';
  } finally {
    await fh.close();
  }
}
