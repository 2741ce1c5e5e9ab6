import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreIoError } from '@thfc/format';
import { afterEach, describe, expect, it } from 'vitest';
import { withLockFile } from '../src/cache/lock-file.js';
import { formatProcess, thisProcess } from '../src/cache/process-identity.js';
import { deferred, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-lock-');
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('withLockFile', () => {
  it('holds the lock (naming its holder) while the body runs, and removes it and its temp file after', async () => {
    const d = await dir();
    const lock = join(d, 'seal.lock');
    const seen = await withLockFile(lock, () => readFile(lock, 'latin1'));
    expect(seen.trim()).toBe(formatProcess(thisProcess()));
    expect(await readdir(d)).toEqual([]);
    await expect(
      withLockFile(lock, async () => {
        throw new Error('body failed');
      }),
    ).rejects.toThrow('body failed');
    expect(existsSync(lock)).toBe(false);
  });

  it('runs bodies one at a time', async () => {
    const d = await dir();
    const lock = join(d, 'seal.lock');
    const order: string[] = [];
    const gate = deferred();
    const first = withLockFile(lock, async () => {
      order.push('first in');
      await gate.promise;
      order.push('first out');
    });
    await new Promise((r) => setTimeout(r, 20));
    const second = withLockFile(lock, async () => {
      order.push('second');
    });
    await new Promise((r) => setTimeout(r, 60));
    expect(order).toEqual(['first in']);
    gate.resolve();
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second']);
  });

  it('breaks the lock of a holder that is gone, of an earlier boot, or of no one', async () => {
    const d = await dir();
    const lock = join(d, 'seal.lock');
    const me = thisProcess();
    for (const holder of [
      formatProcess({ ...me, startTime: '1' }), // this pid, another start: a reused pid
      formatProcess({ ...me, bootId: '00000000-0000-0000-0000-000000000000' }),
      'not a holder',
    ]) {
      await writeFile(lock, `${holder}\n`);
      expect(await withLockFile(lock, async () => 'ran', { waitMs: 100 })).toBe('ran');
    }
  });

  it('gives up on a live holder after waitMs with StoreIoError naming it', async () => {
    const d = await dir();
    const lock = join(d, 'seal.lock');
    const gate = deferred();
    const held = withLockFile(lock, () => gate.promise);
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    const e = await withLockFile(lock, async () => 'ran', { waitMs: 150 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(StoreIoError);
    expect(String(e)).toMatch(new RegExp(`held by pid ${process.pid}`));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    gate.resolve();
    await held;
  });

  it('stops waiting when its signal is aborted', async () => {
    const d = await dir();
    const lock = join(d, 'seal.lock');
    const gate = deferred();
    const held = withLockFile(lock, () => gate.promise);
    await new Promise((r) => setTimeout(r, 20));
    const ac = new AbortController();
    const waiting = withLockFile(lock, async () => 'ran', { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    gate.resolve();
    await held;
    expect(await readdir(d)).toEqual([]);
  });
});
