import { readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeIndex, decodeVersionList } from '@thfc/format';
import { VersionStore } from '@thfc/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runGc } from '../src/gc.js';
import { runKeygen } from '../src/keygen.js';
import { runPack } from '../src/pack.js';
import { runSign } from '../src/sign.js';
import { runPublish, runVersions } from '../src/version-commands.js';
import { imageBytes, runCli, tempDir, testIo } from './helpers.js';

const K = 1024;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

/** Packs image `seed` as NAME `docs` with a given creation time; each seed has 3 blocks of its own and 1 shared. */
async function publish(store: string, seed: number, created: Date, extra: { previous?: string } = {}) {
  const image = join(dir, `docs-${seed}.img`);
  const shared = imageBytes([['t', 64 * K]], 99);
  await writeFile(image, Buffer.concat([shared, imageBytes([['t', 3 * 64 * K]], seed)]));
  return runPack({ image, store, name: 'docs', blockSize: 64 * K, created, ...extra }, testIo());
}

async function blockFiles(store: string): Promise<string[]> {
  const shards = await readdir(join(store, 'blocks'));
  return (await Promise.all(shards.map(async (s) => (await readdir(join(store, 'blocks', s))).map((f) => f)))).flat();
}

/** Makes every block file old enough for gc's grace period. */
async function ageBlocks(store: string): Promise<void> {
  const old = Date.now() / 1000 - 7200;
  for (const s of await readdir(join(store, 'blocks')))
    for (const f of await readdir(join(store, 'blocks', s))) await utimes(join(store, 'blocks', s, f), old, old);
}

describe('retained versions', () => {
  it('every publication is kept under versions/NAME, listed newest first, and NAME.idx names the latest', async () => {
    const store = join(dir, 's');
    const v1 = await publish(store, 1, new Date('2026-12-01T10:00:00Z'));
    const v1Bytes = await readFile(v1.index);
    // --previous names the very file the new pack replaces: v1 must survive as a retained version.
    const v2 = await publish(store, 2, new Date('2026-12-02T10:00:00Z'), { previous: v1.index });
    expect(decodeIndex(await readFile(v2.index)).index.header.previous).toBe(v1.digest);
    expect(v1.version).toBe(join(store, 'versions', 'docs', `20261201T100000Z-${v1.digest.slice(7, 19)}.idx`));
    expect(await readFile(v1.version)).toEqual(v1Bytes);
    const list = decodeVersionList(await readFile(join(store, 'versions/docs/versions.json'), 'utf8'), 'versions.json');
    expect(list.latest).toBe(v2.digest);
    expect(list.versions.map((v) => v.digest)).toEqual([v2.digest, v1.digest]);
    const r = await runVersions({ store, name: 'docs' });
    expect(r.versions.map((v) => [v.digest, v.latest])).toEqual([
      [v2.digest, true],
      [v1.digest, false],
    ]);
  });

  it('gc keeps the blocks of recent versions (a client on v1 keeps working), and retires old ones by the policy', async () => {
    const store = join(dir, 's');
    const now = Date.parse('2026-12-20T00:00:00Z');
    const v1 = await publish(store, 1, new Date('2026-12-01T10:00:00Z'));
    await publish(store, 2, new Date('2026-12-19T10:00:00Z'));
    await ageBlocks(store);
    const all = await blockFiles(store);
    expect(all).toHaveLength(7); // 1 shared + 3 + 3

    // Defaults (newest 3, or younger than 7 days): right after v2, v1's blocks stay.
    const kept = await runGc({ store, delete: true, now });
    expect(kept.unreferenced).toEqual([]);
    expect(kept.versions[0]?.kept.map((k) => k.why)).toEqual(['latest', 'newest']);
    expect(await blockFiles(store)).toHaveLength(7);

    // --keep 1 --keep-days 7: v1 is 19 days old and not among the newest 1: retired, its own 3 blocks go.
    const dry = await runGc({ store, keep: 1, keepDays: 7, now });
    expect(dry.versions[0]?.retired.map((v) => v.digest)).toEqual([v1.digest]);
    expect(dry.unreferenced).toHaveLength(3);
    expect(await blockFiles(store)).toHaveLength(7);
    const del = await runGc({ store, keep: 1, keepDays: 7, now, delete: true });
    expect(del.unreferenced).toHaveLength(3);
    expect(await blockFiles(store)).toHaveLength(4);
    await expect(readFile(v1.version)).rejects.toThrow(/ENOENT/);
    expect((await runVersions({ store, name: 'docs' })).versions).toHaveLength(1);
  });

  it('a version younger than --keep-days is kept even beyond --keep', async () => {
    const store = join(dir, 's');
    const now = Date.parse('2026-12-03T00:00:00Z');
    await publish(store, 1, new Date('2026-12-01T10:00:00Z'));
    await publish(store, 2, new Date('2026-12-02T10:00:00Z'));
    const r = await runGc({ store, keep: 1, keepDays: 7, now });
    expect(r.versions[0]?.kept.map((k) => k.why)).toEqual(['latest', 'recent']);
    expect(r.versions[0]?.retired).toEqual([]);
  });

  it('publish --version rolls NAME.idx back to a retained version, and gc then keeps that one', async () => {
    const store = join(dir, 's');
    const v1 = await publish(store, 1, new Date('2026-11-01T10:00:00Z'));
    const v1Bytes = await readFile(v1.index);
    const v2 = await publish(store, 2, new Date('2026-11-02T10:00:00Z'));
    await runPublish({ store, name: 'docs', version: v1.digest.slice(7, 21) });
    expect(await readFile(join(store, 'docs.idx'))).toEqual(v1Bytes);
    const r = await runVersions({ store, name: 'docs' });
    expect(r.latest).toBe(v1.digest);
    const gc = await runGc({ store, keep: 0, keepDays: 0, now: Date.parse('2026-12-20T00:00:00Z') });
    expect(gc.versions[0]?.kept.map((k) => k.digest)).toEqual([v1.digest]);
    expect(gc.versions[0]?.retired.map((v) => v.digest)).toEqual([v2.digest]);
    await expect(runPublish({ store, name: 'docs', version: 'abcdef' })).rejects.toThrow(/no retained version/);
    await expect(runPublish({ store, name: 'docs', version: 'ffffffffffffffff' })).rejects.toThrow(
      /no retained version/,
    );
  });

  it('a NAME.idx published before versions existed is retained when the next version is packed', async () => {
    const store = join(dir, 's');
    const v1 = await publish(store, 1, new Date('2026-11-01T10:00:00Z'));
    const v1Bytes = await readFile(v1.index);
    await rm(join(store, 'versions'), { recursive: true }); // a store from before versions
    await publish(store, 2, new Date('2026-11-02T10:00:00Z'));
    const list = await new VersionStore(store).list('docs');
    expect(list.versions.map((v) => v.digest)).toContain(v1.digest);
    expect(await readFile(join(store, 'versions/docs', list.versions[1]?.file ?? ''))).toEqual(v1Bytes);
  });

  it('a large signed NAME.idx from before versions is retained byte for byte (read by its ends, copied as a file)', async () => {
    const store = join(dir, 's');
    const image = join(dir, 'big.img');
    await writeFile(image, imageBytes([['t', 1600 * 4 * K]], 7)); // 1,600 entries: an index of ~90 KB
    const v1 = await runPack(
      { image, store, name: 'docs', blockSize: 4 * K, created: new Date('2026-11-01T00:00:00Z') },
      testIo(),
    );
    const key = join(dir, 'k');
    await runKeygen({ keyFile: key });
    await runSign({ index: v1.index, key });
    const v1Bytes = await readFile(v1.index);
    expect(v1Bytes.length).toBeGreaterThan(70 * K);
    await rm(join(store, 'versions'), { recursive: true });
    await publish(store, 2, new Date('2026-11-02T10:00:00Z'));
    const list = await new VersionStore(store).list('docs');
    const kept = list.versions.find((v) => v.digest === v1.digest);
    expect(kept?.bytes).toBe(v1Bytes.length);
    expect(await readFile(join(store, 'versions/docs', kept?.file ?? ''))).toEqual(v1Bytes);
  });

  it('signing NAME.idx signs its retained copy too', async () => {
    const store = join(dir, 's');
    const v1 = await publish(store, 1, new Date('2026-11-01T10:00:00Z'));
    const key = join(dir, 'k');
    const { keyId } = await runKeygen({ keyFile: key });
    await runSign({ index: v1.index, key });
    expect(await readFile(v1.version)).toEqual(await readFile(v1.index));
    expect((await runVersions({ store, name: 'docs' })).versions[0]?.signedBy).toEqual([keyId]);
  });

  it('through the CLI: versions lists, publish --version is the subcommand option, --version still prints', async () => {
    const store = join(dir, 's');
    const v1 = await publish(store, 1, new Date('2026-11-01T10:00:00Z'));
    await publish(store, 2, new Date('2026-11-02T10:00:00Z'));
    const list = await runCli(['versions', store, 'docs']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[1]).toMatch(/^ {2}2026-11-01T10:00:00Z {2}sha256:/);
    const pub = await runCli(['publish', store, 'docs', '--version', v1.digest.slice(7, 19)]);
    expect(pub.stderr).toBe('');
    expect(pub.stdout).toContain(`published docs: ${v1.digest}`);
    expect((await runCli(['versions', store, 'docs'])).stdout).toMatch(/^\* 2026-11-01T10:00:00Z/m);
    expect((await runCli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
    const none = await runCli(['versions', store, 'nosuch']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/^thfc-pack: nosuch: no retained versions/);
  });
});
