import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, indexFileName, VERSION_LIST_FILE, VERSIONS_DIR } from '@thfc/format';
import { VersionStore } from '@thfc/store';
import { makeImage, patternBytes, type TestImage, tempDir } from '@thfc/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * VersionStore on a real store directory (docs/FORMAT.md §5.9). thfc-pack's
 * publishing through it is tested in packages/packer/test/versions.test.ts,
 * the mirror's copying in packages/mirror/test/sync-versions.test.ts.
 */

let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir: root, cleanup } = await tempDir('thfc-version-store-')));
afterEach(() => cleanup());

const image = (seed: number): TestImage => makeImage([patternBytes(4096, seed)], { name: 'docs' });
const latestFile = () => readFile(join(root, indexFileName('docs')));
const hex12 = (img: TestImage) => img.decoded.digest.slice('sha256:'.length, 'sha256:'.length + 12);

describe('VersionStore', () => {
  it('publish retains each index and makes it the latest; list and names read them back', async () => {
    const store = new VersionStore(root);
    expect(await store.list('docs')).toEqual({ name: 'docs', latest: undefined, versions: [] });
    expect(await store.names()).toEqual([]);
    const [a, b] = [image(1), image(2)];
    const va = await store.publish('docs', a.indexBytes);
    await store.publish('docs', b.indexBytes);
    expect(Buffer.from(await latestFile())).toEqual(Buffer.from(b.indexBytes));
    const list = await store.list('docs');
    expect(list.latest).toBe(b.decoded.digest);
    expect(list.versions.map((v) => v.digest).sort()).toEqual([a.decoded.digest, b.decoded.digest].sort());
    expect(Buffer.from(await store.read('docs', va))).toEqual(Buffer.from(a.indexBytes));
    expect(await store.names()).toEqual(['docs']);
  });

  it('setLatest rolls NAME.idx back to a retained version; an unknown one is InputError', async () => {
    const store = new VersionStore(root);
    const [a, b] = [image(1), image(2)];
    await store.publish('docs', a.indexBytes);
    await store.publish('docs', b.indexBytes);
    await store.setLatest('docs', hex12(a));
    expect(Buffer.from(await latestFile())).toEqual(Buffer.from(a.indexBytes));
    expect((await store.list('docs')).latest).toBe(a.decoded.digest);
    const e = await store.setLatest('docs', '0123456789ab').catch((e: unknown) => e);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toBe(
      'docs: no retained version 0123456789ab (a unique prefix of 12+ hex digits; thfc-pack versions lists them)',
    );
  });

  it('a NAME.idx from before versions is retained, byte for byte, when the next one is published', async () => {
    const [old, next] = [image(1), image(2)];
    await writeFile(join(root, indexFileName('docs')), old.indexBytes);
    const store = new VersionStore(root);
    await store.publish('docs', next.indexBytes);
    const list = await store.list('docs');
    const kept = list.versions.find((v) => v.digest === old.decoded.digest);
    expect(kept).toBeDefined();
    expect(Buffer.from(await store.read('docs', kept as NonNullable<typeof kept>))).toEqual(
      Buffer.from(old.indexBytes),
    );
  });

  it('add retains without changing the latest; retire removes the files and their entries', async () => {
    const store = new VersionStore(root);
    const [a, b] = [image(1), image(2)];
    await store.publish('docs', a.indexBytes);
    const vb = await store.add('docs', b.indexBytes);
    expect((await store.list('docs')).latest).toBe(a.decoded.digest);
    expect(Buffer.from(await latestFile())).toEqual(Buffer.from(a.indexBytes));
    await store.retire('docs', [vb]);
    expect((await store.list('docs')).versions.map((v) => v.digest)).toEqual([a.decoded.digest]);
    expect((await readdir(store.dir('docs'))).sort()).toEqual(
      [VERSION_LIST_FILE, (await store.list('docs')).versions[0]?.file].sort(),
    );
  });

  it('a damaged version list throws naming the file rather than reading as empty', async () => {
    const dir = join(root, VERSIONS_DIR, 'docs');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, VERSION_LIST_FILE), '{"format": "not a list"');
    await expect(new VersionStore(root).list('docs')).rejects.toThrow(join(dir, VERSION_LIST_FILE));
  });
});
