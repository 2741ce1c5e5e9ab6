import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockNotFoundError, blockPath, MirrorUnavailableError } from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';
import { currentPriority, type FetchOptions, MemoryLogger, verified } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskCache } from '../src/io/disk-cache.js';
import type { FileVerifier } from '../src/io/file-verifier.js';
import { InlineVerifier } from '../src/io/file-verifier.js';
import { WriteBehind } from '../src/io/write-behind.js';
import { CachedReader } from '../src/sources/cached-reader.js';
import { CheckedReader, rawRef } from '../src/sources/checked-reader.js';
import { HotBlocks } from '../src/sources/hot-blocks.js';
import { corrupted, deferred, makeBlock, readWhole, type TestBlock, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Counts verifications, around the real one. */
class CountingVerifier implements FileVerifier {
  readonly ids: string[] = [];
  readonly options: (FetchOptions | undefined)[] = [];
  gate?: Promise<void>;
  private readonly inner = new InlineVerifier();
  async verify(fd: number, size: number, id: string, options?: FetchOptions): Promise<boolean> {
    this.ids.push(id);
    this.options.push(options);
    await this.gate;
    return this.inner.verify(fd, size, id);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  toString(): string {
    return 'counting';
  }
}

async function setup(paranoid?: boolean, openFiles?: number) {
  const t = await tempDir('thfc-checked-');
  cleanups.push(t.cleanup);
  const disk = new DiskCache({}, { dir: t.dir, openFiles });
  const writer = new WriteBehind({ sink: disk });
  const logger = new MemoryLogger();
  const verifier = new CountingVerifier();
  const checked = new CheckedReader({ disk, writer, verifier, logger }, { paranoid });
  const fileOf = (b: TestBlock) => join(t.dir, blockPath(b.ref.id));
  /** Puts the decoded block on disk as another daemon (or an earlier run) would have. */
  const onDisk = (b: TestBlock, bytes: Uint8Array = b.data) => disk.put(rawRef(b.ref), bytes);
  return { dir: t.dir, disk, writer, logger, verifier, checked, fileOf, onDisk };
}

/** A fresh daemon's checked cache over `first`'s directory, trusting `sealed` (both entries of it); verifier counts reset. */
async function freshDaemon(first: Awaited<ReturnType<typeof setup>>, sealed: ReadonlyMap<string, string>) {
  const disk = new DiskCache({}, { dir: first.dir });
  await disk.open();
  cleanups.push(async () => disk.close());
  const logger = new MemoryLogger();
  const verifier = first.verifier;
  verifier.ids.length = 0;
  const checked = new CheckedReader({ disk, writer: new WriteBehind({ sink: disk }), verifier, logger });
  expect(checked.adopt(sealed)).toBe(sealed.size);
  return { checked, logger, verifier };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** The hot index over the checked cache alone (as a mount's, without RAM or fetches above it). */
const hot = (checked: CheckedReader) => new HotBlocks({ checked });

describe('CheckedReader', () => {
  it('serves a good cached block decoded, checking it once, then by positional reads only', async () => {
    const { checked, onDisk, verifier, logger } = await setup();
    const b = makeBlock(1);
    await onDisk(b);
    expect(checked.holds(b.ref)).toBe(true);
    expect(same(await readWhole(checked, b.ref), b.data)).toBe(true);
    const dst = new Uint8Array(100);
    expect(await checked.read(b.ref, dst, 0, 1000, 100)).toBeUndefined();
    expect(same(dst, b.data.subarray(1000, 1100))).toBe(true);
    expect(verifier.ids).toEqual([b.ref.id]);
    expect(logger.lines).toEqual([]);
  });

  it('readers arriving together share one check', async () => {
    const { checked, onDisk, verifier } = await setup();
    const b = makeBlock(2);
    await onDisk(b);
    const gate = deferred();
    verifier.gate = gate.promise;
    const reads = Array.from({ length: 5 }, () => readWhole(checked, b.ref));
    await new Promise((resolve) => setTimeout(resolve, 10));
    gate.resolve();
    for (const r of await Promise.all(reads)) expect(same(r, b.data)).toBe(true);
    expect(verifier.ids).toEqual([b.ref.id]);
  });

  it('read-ahead checks at background priority; a reader joining the check raises it', async () => {
    const { checked, onDisk, verifier } = await setup();
    const b = makeBlock(20);
    await onDisk(b);
    const gate = deferred();
    verifier.gate = gate.promise;
    const loading = checked.load(b.ref);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(currentPriority(verifier.options[0])).toBe('background');
    const reading = readWhole(checked, b.ref);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(currentPriority(verifier.options[0])).toBe('demand');
    gate.resolve();
    await loading;
    expect(same(await reading, b.data)).toBe(true);
    expect(verifier.ids).toEqual([b.ref.id]);
  });

  it('a file replaced under its name (another inode) is checked again before it is read', async () => {
    // No descriptor kept open: while one is, reads keep going to the inode that was checked.
    const { checked, onDisk, fileOf, verifier, dir, logger } = await setup(false, 0);
    const b = makeBlock(4);
    await onDisk(b);
    await readWhole(checked, b.ref);
    const swap = join(dir, 'swap');
    await writeFile(swap, corrupted(b.data));
    await rename(swap, fileOf(b)); // what a rename by another daemon looks like
    await expect(readWhole(checked, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(verifier.ids).toEqual([b.ref.id, b.ref.id]);
    expect(existsSync(fileOf(b))).toBe(false);
    // "changed since it was checked", then "corrupt … dropped": both name the entry.
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines.every((l) => l.includes(b.ref.id))).toBe(true);
  });

  it('paranoid verifies on every use and serves the bytes it hashed; a later change is a miss', async () => {
    const { checked, onDisk, fileOf, logger } = await setup(true);
    const b = makeBlock(5);
    await onDisk(b);
    const whole = await checked.read(b.ref, new Uint8Array(b.ref.size), 0, 0, b.ref.size);
    expect(whole && same(whole, b.data)).toBe(true); // handed up whole, so the memory cache may keep it
    expect(same(await readWhole(checked, b.ref), b.data)).toBe(true);
    await writeFile(fileOf(b), corrupted(b.data), { flag: 'r+' });
    await expect(readWhole(checked, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(logger.lines).toHaveLength(1);
    expect(String(checked)).toMatch(/^checked-always\(behind\(disk\(.*\)\)\)$/);
  });

  it('a corrupt entry is dropped from the cache, logged once, reported as BlockNotFoundError, never copied out', async () => {
    const { checked, disk, onDisk, fileOf, logger } = await setup();
    const b = makeBlock(6);
    await onDisk(b, corrupted(b.data));
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    const e = await checked.read(b.ref, dst, 0, 0, b.ref.size).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockNotFoundError);
    expect((e as BlockNotFoundError).blockId).toBe(b.ref.id);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(disk.holds(b.ref.id)).toBe(false);
    expect(disk.bytes).toBe(0);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(
      /^FAULT block [0-9a-f]{40} from disk\(.*\) is corrupt: .*; dropped from the cache, fetching again$/,
    );
    // Now it is simply absent.
    expect(checked.holds(b.ref)).toBe(false);
    await expect(readWhole(checked, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(logger.lines).toHaveLength(1);
  });

  it('an entry of another length (the compressed form of an older cache) is a miss and is deleted', async () => {
    const { checked, disk, fileOf, logger } = await setup();
    const b = makeBlock(7);
    await disk.put(b.ref, b.stored); // stored (compressed) bytes under the block's name
    expect(checked.holds(b.ref)).toBe(false);
    await expect(readWhole(checked, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(logger.lines).toEqual([]); // not corruption: just not ours
  });

  it('another block’s bytes of the same length under this name are dropped', async () => {
    const { checked, onDisk, fileOf } = await setup();
    const wanted = makeBlock(8);
    const other = makeBlock(9);
    await onDisk(wanted, other.data);
    await expect(readWhole(checked, wanted.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(wanted))).toBe(false);
  });

  it('passes on BlockNotFoundError and MirrorUnavailableError from the disk unchanged', async () => {
    const { dir, checked } = await setup();
    const absent = makeBlock(10);
    await expect(readWhole(checked, absent.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    const unreadable = makeBlock(11);
    await mkdir(join(dir, blockPath(unreadable.ref.id)), { recursive: true });
    await expect(readWhole(checked, unreadable.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
  });

  it('keep() serves the block from its buffer until it is on disk, then from disk without a check', async () => {
    const { checked, writer, disk, verifier } = await setup();
    const b = makeBlock(12);
    const stored = checked.keep(b.ref, b.data);
    expect(checked.holds(b.ref)).toBe(true);
    const dst = new Uint8Array(10);
    // Copied from the write-behind's buffer, and not handed up: that buffer is reused once written.
    expect(await checked.read(b.ref, dst, 0, 0, 10)).toBeUndefined();
    expect(same(dst, b.data.subarray(0, 10))).toBe(true);
    expect(await stored).toBe(true);
    await writer.idle();
    expect(disk.holds(b.ref.id, b.ref.size)).toBe(true);
    expect(same(await readWhole(checked, b.ref), b.data)).toBe(true);
    expect(verifier.ids).toEqual([]); // it was verified when fetched
  });

  it('keep() over a file already on disk (not replaced) leaves that file to be checked on first use', async () => {
    const { checked, writer, onDisk, verifier, logger } = await setup();
    const b = makeBlock(13);
    await onDisk(b, corrupted(b.data)); // say its read failed earlier, so cached() fetched the block again
    expect(await checked.keep(b.ref, b.data)).toBe(true);
    await writer.idle(); // the put found the name taken and wrote nothing
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    await expect(checked.read(b.ref, dst, 0, 0, b.ref.size)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(dst.every((x) => x === 0xaa)).toBe(true); // the file's bytes were never served as verified
    expect(verifier.ids).toEqual([b.ref.id]);
    expect(logger.lines).toHaveLength(1);
  });

  it('load() waits for a block still being written, and checks a cached one without copying it', async () => {
    const { checked, onDisk, verifier } = await setup();
    const kept = makeBlock(13);
    void checked.keep(kept.ref, kept.data);
    expect(await checked.load(kept.ref)).toBeUndefined();
    expect(checked.holds(kept.ref)).toBe(true);
    const cold = makeBlock(14);
    await onDisk(cold);
    await checked.load(cold.ref);
    await checked.load(cold.ref);
    expect(verifier.ids).toEqual([cold.ref.id]);
    const corrupt = makeBlock(15);
    await onDisk(corrupt, corrupted(corrupt.data));
    await expect(checked.load(corrupt.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
  });

  it('toString says how often it checks and shows the write-behind', async () => {
    const { dir, checked } = await setup();
    expect(String(checked)).toBe(`checked-once(behind(disk(${dir})))`);
  });

  it('under cached(), a corrupt cache entry heals: it is fetched again and replaced', async () => {
    const { checked, writer, onDisk, fileOf, logger } = await setup();
    const b = makeBlock(16);
    await onDisk(b, corrupted(b.data));
    const remote = new FakeSource('remote');
    remote.blocks.set(b.ref.id, b.stored);
    const counters = { hits: 0, fetched: 0, bytesFetched: 0 };
    const cached = new CachedReader({ local: checked, remote: verified(remote), counters });
    expect(same(await readWhole(cached, b.ref), b.data)).toBe(true);
    expect(remote.calls).toEqual([b.ref.id]);
    expect(logger.lines).toHaveLength(1);
    await writer.idle();
    // The good copy replaced the bad one on disk, and the next read is a hit.
    expect(same(await readFile(fileOf(b)), b.data)).toBe(true);
    expect(same(await readWhole(cached, b.ref), b.data)).toBe(true);
    expect(remote.calls).toHaveLength(1);
    expect(counters).toMatchObject({ hits: 1, fetched: 1 });
  });
});

describe('CheckedReader: trust bound to the file’s identity', () => {
  /** A changed copy of the block put under its name by a rename: a new inode, as another writer would leave. */
  const replace = async (dir: string, path: string, bytes: Uint8Array) => {
    const swap = join(dir, `swap-${Math.random()}`);
    await writeFile(swap, bytes);
    await rename(swap, path);
  };
  const namesEntry = (lines: string[], id: string) => lines.filter((l) => l.includes(id));

  it('a block it wrote, replaced by a rename before its file was ever opened, is checked, not trusted (issue 12: 26 of 30)', async () => {
    // The cold read served the block from the write-behind's buffer, so this daemon never opened the file it wrote.
    const { checked, writer, fileOf, dir, verifier, logger } = await setup();
    const b = makeBlock(40);
    await checked.keep(b.ref, b.data);
    await writer.idle();
    await replace(dir, fileOf(b), corrupted(b.data));
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    await expect(checked.read(b.ref, dst, 0, 0, b.ref.size)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(verifier.ids).toEqual([b.ref.id]);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(namesEntry(logger.lines, b.ref.id).join('\n')).toMatch(
      /changed since it was checked \(inode .*\)[\s\S]*corrupt/,
    );
  });

  it('a block it wrote and never opened, edited in place, is checked, not trusted', async () => {
    const { checked, writer, fileOf, logger } = await setup();
    const b = makeBlock(41);
    await checked.keep(b.ref, b.data);
    await writer.idle();
    await writeFile(fileOf(b), corrupted(b.data), { flag: 'r+' }); // same inode
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    await expect(checked.read(b.ref, dst, 0, 0, b.ref.size)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(namesEntry(logger.lines, b.ref.id)).toHaveLength(2);
  });

  it('a file edited in place while its descriptor is open and trusted: readNow refuses it, read() drops it', async () => {
    const { checked, onDisk, disk, fileOf, verifier, logger } = await setup();
    const b = makeBlock(42);
    await onDisk(b);
    await readWhole(checked, b.ref); // checked; its descriptor stays open
    const dst = new Uint8Array(b.ref.size);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(true);
    await writeFile(fileOf(b), corrupted(b.data), { flag: 'r+' });
    expect(disk.openEntry(rawRef(b.ref))?.release()).toBeUndefined(); // still open: only fstat can tell
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    // The hot path itself logged the change and dropped its trust, as read() would have.
    expect(checked.counts.changed).toBe(1);
    expect(checked.verified.has(b.ref.id)).toBe(false);
    expect(namesEntry(logger.lines, b.ref.id)).toHaveLength(1);
    await expect(readWhole(checked, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(verifier.ids).toEqual([b.ref.id, b.ref.id]);
    expect(namesEntry(logger.lines, b.ref.id).join('\n')).toMatch(
      /changed since it was checked \(change time, modification time\)[\s\S]*corrupt/,
    );
    expect(checked.counts).toEqual({ sealed: 0, checked: 2, changed: 1 });
  });

  it('a file renamed over while its descriptor is open: the old inode’s change shows it, and the new file is checked', async () => {
    const { checked, onDisk, fileOf, dir, verifier, logger } = await setup();
    const b = makeBlock(43);
    await onDisk(b);
    await readWhole(checked, b.ref);
    await replace(dir, fileOf(b), corrupted(b.data));
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false); // bytes of the old inode, not confirmed
    await expect(checked.read(b.ref, dst, 0, 0, b.ref.size)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(verifier.ids).toEqual([b.ref.id, b.ref.id]);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(namesEntry(logger.lines, b.ref.id)).toHaveLength(2);
  });

  it('a file touched (same bytes, new change time) is checked again, found good, and served', async () => {
    const { checked, onDisk, fileOf, verifier, logger } = await setup();
    const b = makeBlock(44);
    await onDisk(b);
    await readWhole(checked, b.ref);
    await utimes(fileOf(b), new Date(), new Date());
    expect(same(await readWhole(checked, b.ref), b.data)).toBe(true);
    expect(verifier.ids).toEqual([b.ref.id, b.ref.id]);
    expect(logger.lines).toEqual([expect.stringMatching(/changed since it was checked/)]);
  });

  it('a file that changes while it is hashed is not recorded as checked', async () => {
    const { checked, onDisk, fileOf, verifier } = await setup();
    const b = makeBlock(45);
    await onDisk(b);
    const gate = deferred();
    verifier.gate = gate.promise;
    const loading = checked.load(b.ref);
    await new Promise((r) => setTimeout(r, 10));
    await utimes(fileOf(b), new Date(), new Date()); // bytes unchanged, so the hash passes
    gate.resolve();
    await loading;
    expect([...checked.trusted()]).toEqual([]);
    verifier.gate = undefined;
    expect(same(await readWhole(checked, b.ref), b.data)).toBe(true); // checked again, by the read
    expect(verifier.ids).toEqual([b.ref.id, b.ref.id]);
  });

  it('adopt(): a sealed entry whose file keeps its identity is served without a hash; a changed one is checked', async () => {
    const first = await setup();
    const good = makeBlock(46);
    const bad = makeBlock(47);
    for (const b of [good, bad]) {
      await first.checked.keep(b.ref, b.data);
    }
    await first.writer.idle();
    const sealed = new Map(first.checked.trusted());
    expect([...sealed.keys()].sort()).toEqual([good.ref.id, bad.ref.id].sort());
    await writeFile(first.fileOf(bad), corrupted(bad.data), { flag: 'r+' });
    const { checked, logger, verifier } = await freshDaemon(first, sealed);
    expect(same(await readWhole(checked, good.ref), good.data)).toBe(true);
    await expect(readWhole(checked, bad.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(verifier.ids).toEqual([bad.ref.id]);
    expect(namesEntry(logger.lines, bad.ref.id)).toHaveLength(2);
    expect(checked.counts).toEqual({ sealed: 2, checked: 1, changed: 1 });
    expect([...checked.trusted()].map(([id]) => id)).toEqual([good.ref.id]);
  });

  it('adopt(), first use by the hot path: a sealed file opened in place is served without a hash; a changed one is not', async () => {
    const first = await setup();
    const good = makeBlock(146);
    const bad = makeBlock(147);
    for (const b of [good, bad]) await first.checked.keep(b.ref, b.data);
    await first.writer.idle();
    const sealed = new Map(first.checked.trusted());
    // Changed at rest: the same bytes in a new inode (the seal's identity no longer matches).
    await writeFile(`${first.fileOf(bad)}.new`, bad.data);
    await rename(`${first.fileOf(bad)}.new`, first.fileOf(bad));
    const { checked, logger, verifier } = await freshDaemon(first, sealed);
    const dst = new Uint8Array(good.ref.size).fill(0xaa);
    expect(hot(checked).readNow(good.ref, dst, 0, 0, good.ref.size)).toBe(true);
    expect(same(dst, good.data)).toBe(true);
    dst.fill(0xaa);
    expect(hot(checked).readNow(bad.ref, dst, 0, 0, bad.ref.size)).toBe(false); // left to read(), which checks it
    expect(namesEntry(logger.lines, bad.ref.id)).toHaveLength(1);
    expect(same(await readWhole(checked, bad.ref), bad.data)).toBe(true);
    expect(verifier.ids).toEqual([bad.ref.id]);
    expect(checked.counts).toEqual({ sealed: 2, checked: 1, changed: 1 });
  });

  it('adopt() takes only entries the disk holds, and none when paranoid', async () => {
    const { checked, onDisk, dir } = await setup();
    const b = makeBlock(48);
    await onDisk(b);
    const absent = makeBlock(49);
    expect(
      checked.adopt(
        new Map([
          [b.ref.id, '1 2 3 4 5'],
          [absent.ref.id, '1 2 3 4 5'],
        ]),
      ),
    ).toBe(1);
    const disk = new DiskCache({}, { dir });
    await disk.open();
    const paranoid = new CheckedReader({ disk, writer: new WriteBehind({ sink: disk }) }, { paranoid: true });
    expect(paranoid.adopt(new Map([[b.ref.id, '1 2 3 4 5']]))).toBe(0);
  });

  it('trusted() lists a block it wrote once the write landed, with the identity of the file it wrote', async () => {
    const { checked, writer, fileOf } = await setup();
    const b = makeBlock(50);
    const kept = checked.keep(b.ref, b.data);
    expect([...checked.trusted()]).toEqual([]);
    await kept;
    await writer.idle();
    const st = statSync(fileOf(b), { bigint: true });
    expect([...checked.trusted()]).toEqual([[b.ref.id, `${st.dev} ${st.ino} ${st.size} ${st.ctimeNs} ${st.mtimeNs}`]]);
  });

  it('offline, a dropped entry’s log line says it cannot be fetched again', async () => {
    const t = await tempDir('thfc-checked-');
    cleanups.push(t.cleanup);
    const disk = new DiskCache({}, { dir: t.dir });
    const logger = new MemoryLogger();
    const checked = new CheckedReader({ disk, writer: new WriteBehind({ sink: disk }), logger }, { offline: true });
    const b = makeBlock(51);
    await disk.put(rawRef(b.ref), corrupted(b.data));
    await expect(readWhole(checked, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(logger.lines).toEqual([
      expect.stringMatching(/corrupt.*dropped from the cache, it cannot be fetched again offline$/),
    ]);
  });
});

describe('HotBlocks.readNow over checked()', () => {
  /** Opens the block's file and leaves its descriptor open (idle), as a read would. */
  const openFile = async (disk: DiskCache, b: TestBlock) => (await disk.entry(rawRef(b.ref))).release();

  it('serves a block still in the write-behind from its buffer, at the offset asked for', async () => {
    const { checked, writer, verifier } = await setup();
    const b = makeBlock(30);
    const stored = checked.keep(b.ref, b.data);
    expect(writer.pending(b.ref.id)).toBeDefined();
    const dst = new Uint8Array(300).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 100, 2000, 100)).toBe(true);
    expect(same(dst.subarray(100, 200), b.data.subarray(2000, 2100))).toBe(true);
    expect(dst.subarray(0, 100).every((x) => x === 0xaa)).toBe(true);
    expect(dst.subarray(200).every((x) => x === 0xaa)).toBe(true);
    expect(await stored).toBe(true);
    expect(verifier.ids).toEqual([]);
  });

  it('a block it wrote is served from disk, its file opened in place, without a check', async () => {
    const { checked, writer, verifier } = await setup();
    const b = makeBlock(31);
    await checked.keep(b.ref, b.data);
    await writer.idle();
    expect(writer.pending(b.ref.id)).toBeUndefined();
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(true); // on disk, not open yet: opened now
    expect(same(dst, b.data)).toBe(true);
    expect(verifier.ids).toEqual([]);
  });

  it('a cached block not verified since start is false, even with its file open; true once read() or load() checked it', async () => {
    for (const verify of ['read', 'load'] as const) {
      const { checked, disk, onDisk, verifier } = await setup();
      const b = makeBlock(verify === 'read' ? 32 : 33);
      await onDisk(b);
      await openFile(disk, b);
      const open = disk.openEntry(rawRef(b.ref));
      expect(open).toBeDefined(); // it is open: only the check is missing
      open?.release();
      const dst = new Uint8Array(b.ref.size).fill(0xaa);
      expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size), verify).toBe(false);
      expect(dst.every((x) => x === 0xaa)).toBe(true);
      expect(verifier.ids).toEqual([]); // readNow never checks
      if (verify === 'read') await readWhole(checked, b.ref);
      else await checked.load(b.ref);
      expect(verifier.ids).toEqual([b.ref.id]);
      const slice = new Uint8Array(200).fill(0xaa);
      expect(hot(checked).readNow(b.ref, slice, 50, 3000, 100), verify).toBe(true);
      expect(same(slice.subarray(50, 150), b.data.subarray(3000, 3100))).toBe(true);
      expect(slice.subarray(0, 50).every((x) => x === 0xaa)).toBe(true);
      expect(slice.subarray(150).every((x) => x === 0xaa)).toBe(true);
      expect(verifier.ids).toEqual([b.ref.id]);
    }
  });

  it('paranoid: false for a block on disk, however often it was verified (every use checks)', async () => {
    const { checked, disk, writer } = await setup(true);
    const b = makeBlock(34);
    await checked.keep(b.ref, b.data);
    await writer.idle();
    await openFile(disk, b);
    expect(same(await readWhole(checked, b.ref), b.data)).toBe(true);
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
  });

  it('false for a file replaced under its name after it was verified; read() checks it again and drops it', async () => {
    const { checked, disk, onDisk, fileOf, verifier, logger } = await setup();
    const b = makeBlock(35);
    await onDisk(b);
    await readWhole(checked, b.ref); // verified, descriptor open
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(true);
    // Replace it while the checked inode is still held open, so the new file is surely another inode.
    const old = disk.openEntry(rawRef(b.ref));
    expect(old).toBeDefined();
    await disk.delete(b.ref.id);
    await onDisk(b, corrupted(b.data));
    old?.release();
    await openFile(disk, b); // the new file is open: only its identity tells it apart
    const after = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, after, 0, 0, b.ref.size)).toBe(false);
    expect(after.every((x) => x === 0xaa)).toBe(true);
    await expect(readWhole(checked, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(verifier.ids).toEqual([b.ref.id, b.ref.id]);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(logger.lines).toHaveLength(2);
    expect(hot(checked).readNow(b.ref, after, 0, 0, b.ref.size)).toBe(false);
    expect(after.every((x) => x === 0xaa)).toBe(true);
  });

  it('never copies bytes of a corrupt file: false before the check, and read() then drops it', async () => {
    const { checked, disk, onDisk, fileOf, logger } = await setup();
    const b = makeBlock(36);
    await onDisk(b, corrupted(b.data));
    await openFile(disk, b);
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    await expect(checked.read(b.ref, dst, 0, 0, b.ref.size)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(existsSync(fileOf(b))).toBe(false);
    expect(logger.lines).toHaveLength(1);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
  });

  it('false for a block it does not hold', async () => {
    const { checked } = await setup();
    const b = makeBlock(37);
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot(checked).readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
  });
});

describe('rawRef', () => {
  it('is the decoded block as a raw store entry', () => {
    const b = makeBlock(17);
    expect(rawRef(b.ref)).toEqual({ id: b.ref.id, codec: 'none', storedSize: b.ref.size, size: b.ref.size });
    const raw = rawRef(b.ref);
    expect(rawRef(raw)).toBe(raw);
  });
});
