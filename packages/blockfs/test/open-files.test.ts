import { readFileSync, readSync } from 'node:fs';
import { readlink, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenFiles } from '../src/sources/open-files.js';
import { tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function files(n: number): Promise<string[]> {
  const t = await tempDir('thfc-open-files-');
  cleanups.push(t.cleanup);
  const paths = Array.from({ length: n }, (_, i) => join(t.dir, `f${i}`));
  for (const [i, p] of paths.entries()) await writeFile(p, `file ${i}`);
  return paths;
}

/** What a descriptor points at now (closed: undefined). */
async function target(fd: number): Promise<string | undefined> {
  return readlink(`/proc/self/fd/${fd}`).catch(() => undefined);
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

function readAll(fd: number, size: number): string {
  const buf = Buffer.alloc(size);
  readSync(fd, buf, 0, size, 0);
  return buf.toString();
}

describe('OpenFiles', () => {
  it('opens once per name, shares the descriptor, and reports size and inode', async () => {
    const [a] = (await files(1)) as [string];
    const open = new OpenFiles();
    const [f1, f2] = await Promise.all([open.acquire('a', a), open.acquire('a', a)]);
    expect(f1).toBe(f2);
    expect(f1.size).toBe(6);
    expect(f1.identity).toMatch(/^\d+ \d+ 6 \d+ \d+$/); // dev ino size ctime mtime
    expect(readAll(f1.fd, f1.size)).toBe('file 0');
    expect(open.acquireOpen('a')).toBe(f1);
    expect(open.acquireOpen('b')).toBeUndefined();
    for (let i = 0; i < 3; i++) open.release(f1);
    expect(open.size).toBe(1);
  });

  it('a missing file rejects with ENOENT and leaves nothing behind', async () => {
    const [a] = (await files(1)) as [string];
    const open = new OpenFiles();
    await expect(open.acquire('x', `${a}.missing`)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(open.size).toBe(0);
    expect(open.acquireOpen('x')).toBeUndefined();
  });

  it('keeps at most `max` idle descriptors, closing the least recently used', async () => {
    const paths = await files(4);
    const open = new OpenFiles({}, { max: 2 });
    const fds: number[] = [];
    for (const [i, p] of paths.entries()) {
      const f = await open.acquire(`k${i}`, p);
      fds.push(f.fd);
      open.release(f);
    }
    await settle();
    expect(open.size).toBe(2);
    // Closed (the number may already serve another open, never the old file).
    expect(await target(fds[0] as number)).not.toBe(paths[0]);
    expect(await target(fds[1] as number)).not.toBe(paths[1]);
    expect(await target(fds[3] as number)).toBe(paths[3]);
  });

  it('never closes a descriptor in use, however full the table', async () => {
    const paths = await files(3);
    const open = new OpenFiles({}, { max: 0 });
    const held = await open.acquire('k0', paths[0] as string);
    for (const [i, p] of paths.slice(1).entries()) open.release(await open.acquire(`k${i + 1}`, p));
    await settle();
    expect(await target(held.fd)).toBe(paths[0]);
    expect(readAll(held.fd, held.size)).toBe('file 0');
    open.release(held);
    await settle();
    expect(await target(held.fd)).not.toBe(paths[0]);
  });

  it('drop() retires a name: readers in flight keep the old file, the next acquire opens the new one', async () => {
    const [a, b] = (await files(2)) as [string, string];
    const open = new OpenFiles();
    const old = await open.acquire('a', a);
    await rename(b, a); // another daemon replaced the file
    open.drop('a');
    expect(readAll(old.fd, old.size)).toBe('file 0'); // still the file it opened
    const fresh = await open.acquire('a', a);
    expect(fresh).not.toBe(old);
    expect(fresh.identity).not.toBe(old.identity);
    expect(readFileSync(a, 'utf8')).toBe('file 1');
    open.release(old);
    await settle();
    expect(await target(old.fd)).not.toBe(`${a} (deleted)`);
    expect(await target(fresh.fd)).toBe(a);
    open.release(fresh);
  });

  it('closeAll() closes idle descriptors and the rest when released', async () => {
    const [a, b] = (await files(2)) as [string, string];
    const open = new OpenFiles();
    const idle = await open.acquire('a', a);
    open.release(idle);
    const busy = await open.acquire('b', b);
    open.closeAll();
    await settle();
    expect(await target(idle.fd)).not.toBe(a);
    expect(await target(busy.fd)).toBe(b);
    open.release(busy);
    await settle();
    expect(await target(busy.fd)).not.toBe(b);
  });

  it('a file unlinked while open stays readable through its descriptor', async () => {
    const [a] = (await files(1)) as [string];
    const open = new OpenFiles();
    const f = await open.acquire('a', a);
    await unlink(a);
    expect(readAll(f.fd, f.size)).toBe('file 0');
    open.release(f);
    open.drop('a');
    await expect(open.acquire('a', a)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
