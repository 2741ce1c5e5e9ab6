import { copyFile, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  assertImageName,
  decodeIndex,
  decodeVersionList,
  encodeVersionList,
  findVersion,
  fsError,
  type ImageVersion,
  IndexFormatError,
  InputError,
  indexFileName,
  MAX_VERSION_LIST_BYTES,
  peekIndexIdentity,
  sortVersions,
  VERSION_LIST_FILE,
  VERSIONS_DIR,
  type VersionList,
  versionFileName,
} from '@thfc/format';
import { syncDir, tempPathFor, writeFileAtomic } from './atomic-file.js';
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

  /**
   * The list, with a NAME.idx that predates versions (or was copied in by
   * hand) retained first. It is identified from its first and last bytes and
   * copied file to file: a 4-million-block index is ~200 MB, which a publish
   * must not hold in memory a second time.
   */
  private async adoptCurrent(name: string, signal?: AbortSignal): Promise<VersionList> {
    const list = await this.list(name);
    const path = join(this.root, indexFileName(name));
    const ends = await readEnds(path);
    if (!ends) return list;
    let id: { created: string; digest: string };
    try {
      id = peekIndexIdentity(ends.bytes, path);
    } catch {
      return list; // a damaged NAME.idx is not worth keeping; publishing replaces it
    }
    if (list.versions.some((v) => v.digest === id.digest)) return list;
    const file = versionFileName(id.created, id.digest);
    const dir = this.dir(name);
    await mkdir(dir, { recursive: true }).catch((e) => {
      throw fsError(e, dir);
    });
    await copyFileAtomic(path, join(dir, file), signal);
    const adopted = withVersion(list, { file, ...id, bytes: ends.size }, id.digest);
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

/** Bytes of an index's head and tail that hold its header and its end line (the whole file when small). */
const HEAD_BYTES = 4096;
const TAIL_BYTES = 64 * 1024;

async function readEnds(path: string): Promise<{ bytes: Buffer; size: number } | undefined> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, path);
  }
  try {
    const { size } = await fh.stat();
    if (size <= HEAD_BYTES + TAIL_BYTES) return { bytes: await fh.readFile(), size };
    const head = Buffer.alloc(HEAD_BYTES);
    const tail = Buffer.alloc(TAIL_BYTES);
    await fh.read(head, 0, HEAD_BYTES, 0);
    await fh.read(tail, 0, TAIL_BYTES, size - TAIL_BYTES);
    return { bytes: Buffer.concat([head, Buffer.from('\n'), tail]), size };
  } finally {
    await fh.close();
  }
}

/** Copies `from` to `to` by a temp file beside `to`, synced, then renamed (atomic-file.ts's rule for files). */
async function copyFileAtomic(from: string, to: string, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const tmp = tempPathFor(to);
  try {
    await copyFile(from, tmp);
    const fh = await open(tmp, 'r+');
    await fh.sync().finally(() => fh.close());
    await rename(tmp, to);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw fsError(e, to);
  }
  await syncDir(dirname(to));
}

function withVersion(list: VersionList, version: ImageVersion, latest: string | undefined): VersionList {
  return {
    name: list.name,
    latest,
    versions: sortVersions([...list.versions.filter((v) => v.digest !== version.digest), version]),
  };
}
