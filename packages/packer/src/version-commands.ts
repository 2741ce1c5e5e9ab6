import { assertImageName, decodeIndex, type ImageVersion } from '@thfc/format';
import { VersionStore } from '@thfc/store';
import { InputError } from './errors.js';
import { assertStoreDir } from './store-indexes.js';

/** One retained version as `thfc-pack versions` reports it. */
export interface VersionRow extends ImageVersion {
  /** NAME.idx holds this version. */
  readonly latest: boolean;
  /** Key ids of the signatures the retained copy carries (not checked against any trust here). */
  readonly signedBy: readonly string[];
  readonly blocks: number;
  readonly size: number;
}

export interface VersionsReport {
  readonly name: string;
  readonly latest: string | undefined;
  /** Newest first. */
  readonly versions: readonly VersionRow[];
}

/** `thfc-pack versions STORE NAME`: the retained versions of one image, newest first. */
export async function runVersions(o: { store: string; name: string }): Promise<VersionsReport> {
  await assertStoreDir(o.store, 'versions');
  const store = new VersionStore(o.store);
  const list = await store.list(assertImageName(o.name));
  if (list.versions.length === 0)
    throw new InputError(
      `${o.name}: no retained versions in ${o.store} (images packed with thfc-pack 0.1 or later have them)`,
    );
  const versions: VersionRow[] = [];
  for (const v of list.versions) {
    const decoded = decodeIndex(await store.read(o.name, v));
    versions.push({
      ...v,
      latest: v.digest === list.latest,
      signedBy: decoded.signatures.map((s) => s.keyId),
      blocks: decoded.index.blockCount,
      size: decoded.index.header.size,
    });
  }
  return { name: list.name, latest: list.latest, versions };
}

/** `thfc-pack publish STORE NAME --version DIGEST`: NAME.idx becomes that retained version (a rollback). */
export async function runPublish(
  o: { store: string; name: string; version: string },
  signal?: AbortSignal,
): Promise<{ name: string; version: ImageVersion }> {
  await assertStoreDir(o.store, 'publish');
  const version = await new VersionStore(o.store).setLatest(assertImageName(o.name), o.version, signal);
  return { name: o.name, version };
}
