import { fstatSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FdCache, openRegularFile } from '../src/fd-cache.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  for (const n of ['a', 'b', 'c']) await writeFile(join(dir, n), n.repeat(10));
  await symlink(join(dir, 'a'), join(dir, 'link'));
  await mkdir(join(dir, 'sub'));
});
afterAll(() => cleanup());

const isOpen = (fd: number) => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

describe('openRegularFile', () => {
  it('opens regular files only: a symlink, a directory or a missing path is undefined', async () => {
    const f = await openRegularFile(join(dir, 'a'));
    expect(f?.size).toBe(10);
    expect(f?.identity).toMatch(/^\d+:\d+:10:/);
    expect(await openRegularFile(join(dir, 'link'))).toBeUndefined();
    expect(await openRegularFile(join(dir, 'sub'))).toBeUndefined();
    expect(await openRegularFile(join(dir, 'nope'))).toBeUndefined();
    expect(await openRegularFile(join(dir, 'a', 'x'))).toBeUndefined();
  });
});

describe('FdCache', () => {
  it('shares one descriptor per path, evicts the least recently used, and never closes one in use', async () => {
    const cache = new FdCache({}, { maxOpenFiles: 2 });
    const [a1, a2] = await Promise.all([cache.acquire(join(dir, 'a')), cache.acquire(join(dir, 'a'))]);
    expect(a1?.fd).toBe(a2?.fd);
    const b = await cache.acquire(join(dir, 'b'));
    cache.release(b as NonNullable<typeof b>);
    const c = await cache.acquire(join(dir, 'c')); // evicts a (in use: stays open)
    expect(cache.size).toBe(2);
    expect(isOpen((a1 as NonNullable<typeof a1>).fd)).toBe(true);
    cache.release(a1 as NonNullable<typeof a1>);
    expect(isOpen((a1 as NonNullable<typeof a1>).fd)).toBe(true);
    cache.release(a2 as NonNullable<typeof a2>);
    await new Promise((r) => setTimeout(r, 20));
    expect(isOpen((a1 as NonNullable<typeof a1>).fd)).toBe(false);
    cache.release(c as NonNullable<typeof c>);
    cache.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(isOpen((c as NonNullable<typeof c>).fd)).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('reopens a descriptor older than the revalidation period', async () => {
    let now = 0;
    const cache = new FdCache({ now: () => now }, { revalidateMs: 1000 });
    const first = await cache.acquire(join(dir, 'b'));
    cache.release(first as NonNullable<typeof first>);
    now = 2000;
    const second = await cache.acquire(join(dir, 'b'));
    expect(second).not.toBe(first);
    cache.release(second as NonNullable<typeof second>);
    cache.close();
  });

  it('resolves undefined for what it refuses to open', async () => {
    const cache = new FdCache();
    expect(await cache.acquire(join(dir, 'link'))).toBeUndefined();
    expect(await cache.acquire(join(dir, 'missing'))).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
