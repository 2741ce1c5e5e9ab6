import { InputError, UsageError } from '@thfc/format';
import { isUrl } from './catalog.js';

/** What `thfc-vm boot IMAGE` was given. */
export type ImageRef =
  /** A disk file: already mounted (MOUNTPOINT/NAME) or any local raw image. Booted as is, through an overlay. */
  | { readonly kind: 'file'; readonly path: string }
  /** An index (URL or local NAME.idx): mounted through httpstorged first. */
  | { readonly kind: 'index'; readonly url: string }
  /** A name looked up in the catalog. */
  | { readonly kind: 'catalog'; readonly name: string };

/**
 * Classifies IMAGE from facts the caller gathered (does a file exist there,
 * does it start like an index). URLs and *.idx are indexes; an existing
 * file is a disk; a bare word is a catalog name.
 */
export function classifyImage(
  arg: string,
  facts: { isFile: boolean; looksLikeIndex: boolean; hasCatalog: boolean; isDirectory?: boolean; hasPool?: boolean },
): ImageRef {
  if (isUrl(arg)) return { kind: 'index', url: arg };
  if (facts.isFile)
    return facts.looksLikeIndex || arg.endsWith('.idx') ? { kind: 'index', url: arg } : { kind: 'file', path: arg };
  if (facts.isDirectory)
    throw new InputError(`${arg} is a directory: give a disk image, an index (NAME.idx or a URL) or a catalog name`);
  // With --pool, httpstorged fetches a bare NAME or NAME.idx from the pool's mirrors.
  if (facts.hasPool && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(arg)) return { kind: 'index', url: arg };
  if (arg.endsWith('.idx')) throw new InputError(`${arg}: no such index file`);
  if (!arg.includes('/')) {
    if (facts.hasCatalog) return { kind: 'catalog', name: arg };
    throw new UsageError(
      `${arg}: no such file; to boot a catalog entry by name, say which catalog: --catalog URL (or set THFC_CATALOG)`,
    );
  }
  throw new InputError(`${arg}: no such file`);
}
