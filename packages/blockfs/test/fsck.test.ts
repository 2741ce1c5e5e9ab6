import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { CommandIo } from '@thfc/cli';
import { blockPath, UsageError } from '@thfc/format';
import { runCommand } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSeal } from '../src/cache/cache-seal.js';
import { CacheSealer } from '../src/cache/cache-sealer.js';
import { formatFsckReport, runFsck } from '../src/fsck.js';
import { identityOf } from '../src/io/file-identity.js';
import { corrupted, makeBlock, tempDir } from './image-fixtures.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function io(signal = new AbortController().signal): CommandIo {
  return {
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    signal,
    progress: false,
    env: {},
  };
}

/** A pid that was just used and is free now: its process exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid as number;
}

async function cacheWith() {
  const t = await tempDir('thfc-fsck-');
  cleanups.push(t.cleanup);
  const dir = t.dir;
  const put = async (name: string, bytes: Uint8Array | string, shard = name.slice(0, 2)) => {
    const path = join(dir, 'blocks', shard, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    return path;
  };
  const good = [makeBlock(1), makeBlock(2), makeBlock(3)];
  for (const b of good) await put(b.ref.id, b.data);
  return { dir, put, good };
}

describe('runFsck', () => {
  it('hashes every entry, drops bad ones and temp files of dead writers, leaves the rest, and seals the good ones', async () => {
    const { dir, put, good } = await cacheWith();
    const bad = makeBlock(4);
    const compressed = makeBlock(5);
    await put(bad.ref.id, corrupted(bad.data));
    await put(compressed.ref.id, compressed.stored); // an older version's entry: not the raw block
    const dead = await deadPid();
    const shard = bad.ref.id.slice(0, 2);
    const leftover = await put(`.tmp-${bad.ref.id}.${dead}.7`, 'half a block', shard);
    const inFlight = await put(`.tmp-${bad.ref.id}.${process.pid}.8`, 'being written', shard);
    const stray = await put('README', 'not a block', 'ab');
    await writeFile(join(dir, `.tmp-seal.${dead}.0badf00d`), 'a seal never renamed');
    const r = await runFsck({ cache: dir }, io());
    expect(r).toMatchObject({ entries: 5, good: 3, leftovers: 2, strays: 1, sealed: 3, ok: false });
    expect(r.dropped.map((d) => d.id)).toEqual([bad.ref.id, compressed.ref.id].sort());
    expect(r.dropped.every((d) => d.problem === 'corrupt' && /content hashes to [0-9a-f]{40}/.test(d.detail))).toBe(
      true,
    );
    expect(existsSync(join(dir, blockPath(bad.ref.id)))).toBe(false);
    expect(existsSync(join(dir, blockPath(compressed.ref.id)))).toBe(false);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(inFlight)).toBe(true); // its writer runs
    expect(existsSync(stray)).toBe(true);
    const seal = decodeSeal(await readFile(join(dir, 'seal')));
    expect([...seal.keys()].sort()).toEqual(good.map((b) => b.ref.id).sort());
    for (const b of good) {
      expect(seal.get(b.ref.id)).toBe(identityOf(statSync(join(dir, blockPath(b.ref.id)), { bigint: true })));
    }
    const text = formatFsckReport(r);
    expect(text.split('\n').filter((l) => l.startsWith('dropped '))).toHaveLength(2);
    expect(text).toMatch(
      /^DROPPED: .*: 5 entries \(.*\) hashed, 3 good, 2 dropped; 2 temp leftovers removed, 1 other files left alone; sealed 3 entries in [\d.]+ s$/m,
    );
  });

  it('a clean cache is ok and sealed; an empty or new directory is ok with nothing to seal', async () => {
    const { dir } = await cacheWith();
    expect(await runFsck({ cache: dir }, io())).toMatchObject({ ok: true, entries: 3, good: 3, sealed: 3 });
    const t = await tempDir('thfc-fsck-');
    cleanups.push(t.cleanup);
    expect(await runFsck({ cache: t.dir }, io())).toMatchObject({ ok: true, entries: 0, sealed: 0 });
  });

  it('refuses a cache that is a file (UsageError) and names one that does not exist', async () => {
    const t = await tempDir('thfc-fsck-');
    cleanups.push(t.cleanup);
    const file = join(t.dir, 'file');
    await writeFile(file, 'not a cache');
    const e = await runFsck({ cache: file }, io()).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UsageError);
    expect(String(e)).toContain(`${file} is not a directory`);
    const gone = join(t.dir, 'gone');
    const m = await runFsck({ cache: gone }, io()).catch((err: unknown) => err);
    expect(m).not.toBeInstanceOf(UsageError);
    expect(String(m)).toContain(gone);
  });

  it('refuses while a daemon is registered as using the cache, naming it, and changes nothing', async () => {
    const { dir, put } = await cacheWith();
    const bad = makeBlock(6);
    await put(bad.ref.id, corrupted(bad.data));
    const daemon = new CacheSealer({}, { dir });
    await daemon.open(); // this process, as a daemon would at its start
    const e = await runFsck({ cache: dir }, io()).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UsageError);
    expect(String(e)).toMatch(new RegExp(`in use by httpstorged \\(pid ${process.pid}\\): unmount first`));
    expect(existsSync(join(dir, blockPath(bad.ref.id)))).toBe(true);
    await daemon.seal([]);
    expect((await runFsck({ cache: dir }, io())).ok).toBe(false);
  });

  it('stops when interrupted, leaving the seal as it was', async () => {
    const { dir } = await cacheWith();
    const ac = new AbortController();
    ac.abort();
    await expect(runFsck({ cache: dir }, io(ac.signal))).rejects.toThrow(/interrupted/);
    expect(existsSync(join(dir, 'seal'))).toBe(false);
  });
});

describe('httpstorged fsck', () => {
  const cli = (args: string[]) => runCommand(process.execPath, [CLI, 'fsck', ...args], { timeoutMs: 60_000 });

  it('exit 0 when clean, 1 when it dropped something; --json prints the report; 3 for a missing cache', async () => {
    const { dir, put } = await cacheWith();
    const clean = await cli([dir]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/^ok: .*3 entries/);
    const bad = makeBlock(7);
    await put(bad.ref.id, corrupted(bad.data));
    const dropped = await cli([dir, '--json']);
    expect(dropped.code).toBe(1);
    const report = JSON.parse(dropped.stdout);
    expect(report).toMatchObject({ ok: false, good: 3, sealed: 3, dropped: [{ id: bad.ref.id, problem: 'corrupt' }] });
    const missing = await cli([join(dir, 'nope')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^httpstorged: .*nope: no such file/)]);
    expect(await readdir(join(dir, 'daemons'))).toEqual([]);
  });

  it('exit 2 with one line while a daemon uses the cache', async () => {
    const { dir } = await cacheWith();
    const daemon = new CacheSealer({}, { dir });
    await daemon.open();
    const r = await cli([dir]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^httpstorged: .* is in use by httpstorged \\(pid ${process.pid}\\)`)),
    ]);
    await daemon.seal([]);
  });
});
