import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  assertImageName,
  decodeIndex,
  decodeVersionList,
  encodeVersionList,
  findVersion,
  type ImageVersion,
  IndexFormatError,
  indexFileName,
  MAX_VERSION_LIST_BYTES,
  peekIndexIdentity,
  sortVersions,
  VERSION_LIST_FILE,
  VERSIONS_DIR,
  type VersionList,
  versionFileName,
} from '@thfc/format';
import { syncDir, writeFileAtomic } from './atomic-file.js';
import { fsError, InputError } from './errors.js';
import { writeIndexFiles } from './index-files.js';

/**
 * The retained versions of a store's images (docs/FORMAT.md §5.9): every
 * published index is kept as `versions/NAME/<created>-<digest12>.idx`,
 * listed in `versions/NAME/versions.json`, and `NAME.idx` names the latest.
 * Writes go version file → list → NAME.idx, each by temp file and rename,
 * so a crash leaves at worst a retained version that is not yet the latest.
 */
export class VersionStore {
  constructor(readonly root: string) {}

  dir(name: string): string {
    return join(this.root, VERSIONS_DIR, assertImageName(name));
  }

  /** The list, or an empty one for an image never published with versions. A damaged list throws. */
  async list(name: string): Promise<VersionList> {
    const path = join(this.dir(name), VERSION_LIST_FILE);
    let text: string;
    try {
      const st = await stat(path);
      if (st.size > MAX_VERSION_LIST_BYTES) throw new InputError(`${path}: larger than a version list can be`);
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { name, latest: undefined, versions: [] };
      throw fsError(e, path);
    }
    return decodeVersionList(text, path);
  }

  /** Images with a version directory, sorted. */
  async names(): Promise<string[]> {
    try {
      return (await readdir(join(this.root, VERSIONS_DIR), { withFileTypes: true }))
        .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
        .map((d) => d.name)
        .sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fsError(e, join(this.root, VERSIONS_DIR));
    }
  }

  async read(name: string, version: ImageVersion): Promise<Buffer> {
    const path = join(this.dir(name), version.file);
    try {
      return await readFile(path);
    } catch (e) {
      throw fsError(e, path);
    }
  }

  /**
   * Publishes `bytes` (an encoded index of image `name`) as a retained
   * version and as the latest. A NAME.idx published before versions existed
   * is first kept as a version of its own, so publishing never loses it.
   */
  async publish(name: string, bytes: Uint8Array, signal?: AbortSignal): Promise<ImageVersion> {
    let list = await this.adoptCurrent(name, signal);
    const version = await this.retain(name, bytes, signal);
    list = withVersion(list, version, version.digest);
    await this.writeList(list, signal);
    await writeIndexFiles(join(this.root, indexFileName(name)), bytes, { signal });
    return version;
  }

  /** Makes a retained version the latest again (a rollback, or a roll forward). */
  async setLatest(name: string, spec: string, signal?: AbortSignal): Promise<ImageVersion> {
    const list = await this.adoptCurrent(name, signal);
    const version = findVersion(list, spec);
    if (!version)
      throw new InputError(
        `${name}: no retained version ${spec} (a unique prefix of 12+ hex digits; thfc-pack versions lists them)`,
      );
    const bytes = await this.read(name, version);
    const decoded = decodeIndex(bytes);
    if (decoded.digest !== version.digest)
      throw new IndexFormatError(`retained version ${version.file} does not hold ${version.digest}`, undefined);
    await this.writeList(withVersion(list, version, version.digest), signal);
    await writeIndexFiles(join(this.root, indexFileName(name)), bytes, { signal });
    return version;
  }

  /** Keeps `bytes` as a retained version without making it the latest (a replica copying its upstream's). */
  async add(name: string, bytes: Uint8Array, signal?: AbortSignal): Promise<ImageVersion> {
    const list = await this.list(name);
    const version = await this.retain(name, bytes, signal);
    await this.writeList(withVersion(list, version, list.latest), signal);
    return version;
  }

  /** After `sign` rewrote NAME.idx: its retained copy (same digest) gets the new signatures too. */
  async refresh(name: string, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const list = await this.list(name);
    const { digest } = peekIndexIdentity(bytes);
    if (!list.versions.some((v) => v.digest === digest)) return;
    const version = await this.retain(name, bytes, signal);
    await this.writeList(withVersion(list, version, list.latest), signal);
  }

  /** Removes retired versions' files and their list entries. */
  async retire(name: string, retired: readonly ImageVersion[], signal?: AbortSignal): Promise<void> {
    if (retired.length === 0) return;
    const gone = new Set(retired.map((v) => v.digest));
    const list = await this.list(name);
    await this.writeList({ ...list, versions: list.versions.filter((v) => !gone.has(v.digest)) }, signal);
    for (const v of retired) await unlink(join(this.dir(name), v.file)).catch(() => {});
    await syncDir(this.dir(name));
  }

  /** The list, with a NAME.idx that predates versions (or was copied in by hand) retained first. */
  private async adoptCurrent(name: string, signal?: AbortSignal): Promise<VersionList> {
    const list = await this.list(name);
    const current = await readFile(join(this.root, indexFileName(name))).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw fsError(e, join(this.root, indexFileName(name)));
    });
    if (!current) return list;
    let digest: string;
    try {
      digest = peekIndexIdentity(current).digest;
    } catch {
      return list; // a damaged NAME.idx is not worth keeping; publishing replaces it
    }
    if (list.versions.some((v) => v.digest === digest)) return list;
    const version = await this.retain(name, current, signal);
    const adopted = withVersion(list, version, digest);
    await this.writeList(adopted, signal);
    return adopted;
  }

  private async retain(name: string, bytes: Uint8Array, signal?: AbortSignal): Promise<ImageVersion> {
    const { created, digest } = peekIndexIdentity(bytes);
    const file = versionFileName(created, digest);
    const dir = this.dir(name);
    await mkdir(dir, { recursive: true }).catch((e) => {
      throw fsError(e, dir);
    });
    await writeFileAtomic(join(dir, file), bytes, { durable: true, signal });
    return { file, created, digest, bytes: bytes.length };
  }

  private async writeList(list: VersionList, signal?: AbortSignal): Promise<void> {
    await writeFileAtomic(join(this.dir(list.name), VERSION_LIST_FILE), Buffer.from(encodeVersionList(list)), {
      durable: true,
      signal,
    });
  }
}

function withVersion(list: VersionList, version: ImageVersion, latest: string | undefined): VersionList {
  return {
    name: list.name,
    latest,
    versions: sortVersions([...list.versions.filter((v) => v.digest !== version.digest), version]),
  };
}
