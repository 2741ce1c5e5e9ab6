import { close, fstat, fstatSync, open, openSync, readFileSync, readSync } from 'node:fs';
import { readlink, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { type FileOpener, OpenFiles } from '../src/open-files.js';

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

interface TestFile {
  readonly fd: number;
  readonly size: number;
  readonly identity: string;
}

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);

type CountingOpener<R extends TestFile | undefined> = FileOpener<R> & { opens: number };

/** Real opens, counted; a missing file rejects with ENOENT, or (`lenient`) resolves undefined. */
function fsOpener(): CountingOpener<TestFile>;
function fsOpener(lenient: true): CountingOpener<TestFile | undefined>;
function fsOpener(lenient = false): CountingOpener<TestFile | undefined> {
  const opener = {
    opens: 0,
    async open(path: string): Promise<TestFile | undefined> {
      opener.opens++;
      let fd: number;
      try {
        fd = await openAsync(path, 'r');
      } catch (e) {
        if (lenient && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
      const st = await fstatAsync(fd);
      return { fd, size: st.size, identity: `${st.dev}:${st.ino}:${st.mtimeMs}` };
    },
    close: (fd: number) => close(fd, () => {}),
  };
  return opener;
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
  it('opens once per name, shares the descriptor, and hands out what the opener returned', async () => {
    const [a] = (await files(1)) as [string];
    const opener = fsOpener();
    const open = new OpenFiles({ opener });
    const [f1, f2] = await Promise.all([open.acquire('a', a), open.acquire('a', a)]);
    expect(opener.opens).toBe(1);
    expect(f1).toBe(f2);
    expect(f1.size).toBe(6);
    expect(f1.identity).toMatch(/^\d+:\d+:/);
    expect(readAll(f1.fd, f1.size)).toBe('file 0');
    expect(open.acquireOpen('a')).toBe(f1);
    expect(open.acquireOpen('b')).toBeUndefined();
    for (let i = 0; i < 3; i++) open.release(f1);
    expect(open.size).toBe(1);
    expect(await target(f1.fd)).toBe(a);
  });

  it("a rejected open rejects every waiter and leaves nothing behind; an opener's undefined passes through", async () => {
    const [a] = (await files(1)) as [string];
    const open = new OpenFiles({ opener: fsOpener() });
    const both = [open.acquire('x', `${a}.missing`), open.acquire('x', `${a}.missing`)];
    for (const p of both) await expect(p).rejects.toMatchObject({ code: 'ENOENT' });
    expect(open.size).toBe(0);
    expect(open.acquireOpen('x')).toBeUndefined();
    const lenient = new OpenFiles({ opener: fsOpener(true) });
    expect(await lenient.acquire('x', `${a}.missing`)).toBeUndefined();
    expect(lenient.size).toBe(0);
  });

  it('acquireNow() opens in place through openNow(), shares it with acquire(), and defers to an open in flight', async () => {
    const [a, b, c] = (await files(3)) as [string, string, string];
    const opener = fsOpener();
    let nowOpens = 0;
    const withNow = Object.assign(opener, {
      openNow(path: string): TestFile | undefined {
        nowOpens++;
        const fd = openSync(path, 'r');
        const st = fstatSync(fd);
        return { fd, size: st.size, identity: `${st.dev}:${st.ino}:${st.mtimeMs}` };
      },
    });
    const open = new OpenFiles({ opener: withNow }, { max: 1 });
    const fa = open.acquireNow('a', () => a);
    expect(fa && readAll(fa.fd, fa.size)).toBe('file 0');
    expect(await open.acquire('a', a)).toBe(fa); // shared, not opened again
    expect([nowOpens, opener.opens]).toEqual([1, 0]);
    const inFlight = open.acquire('b', b);
    expect(open.acquireNow('b', () => b)).toBeUndefined(); // an open in flight: the caller waits for it instead
    const fb = await inFlight;
    for (let i = 0; i < 2; i++) open.release(fa as TestFile);
    open.release(fb);
    expect(open.size).toBe(1); // max 1: the idle descriptors beyond it closed
    expect(nowOpens).toBe(1);
    const plain = new OpenFiles({ opener: fsOpener() });
    expect(plain.acquireNow('c', () => c)).toBeUndefined(); // an opener without openNow: acquire() does it
    plain.close();
    open.close();
    expect(open.acquireNow('c', () => c)).toBeUndefined(); // closed: nothing is kept, nothing opened
    expect(nowOpens).toBe(1);
  });

  it('keeps at most `max` idle descriptors, closing the least recently used', async () => {
    const paths = await files(4);
    const open = new OpenFiles({ opener: fsOpener() }, { max: 2 });
    const fds: number[] = [];
    for (const [i, p] of paths.entries()) {
      const f = await open.acquire(`k${i}`, p);
      fds.push(f.fd);
      open.release(f);
      // k0 is used again after each open: the least recently used is always another.
      if (i > 0 && i < 3) open.release(open.acquireOpen('k0') as TestFile);
    }
    await settle();
    expect(open.size).toBe(2);
    // Closed (the number may already serve another open, never the old file).
    expect(await target(fds[1] as number)).not.toBe(paths[1]);
    expect(await target(fds[2] as number)).not.toBe(paths[2]);
    expect(await target(fds[0] as number)).toBe(paths[0]);
    expect(await target(fds[3] as number)).toBe(paths[3]);
  });

  it('never closes a descriptor in use, however full the table', async () => {
    const paths = await files(3);
    const open = new OpenFiles({ opener: fsOpener() }, { max: 0 });
    const held = await open.acquire('k0', paths[0] as string);
    for (const [i, p] of paths.slice(1).entries()) open.release(await open.acquire(`k${i + 1}`, p));
    await settle();
    expect(await target(held.fd)).toBe(paths[0]);
    expect(readAll(held.fd, held.size)).toBe('file 0');
    // Still in the table, shared: in use, it was never a candidate for closing.
    expect(open.acquireOpen('k0')).toBe(held);
    open.release(held);
    open.release(held);
    await settle();
    expect(await target(held.fd)).not.toBe(paths[0]);
  });

  it('drop() retires a name: readers in flight keep the old file, the next acquire opens the new one', async () => {
    const [a, b] = (await files(2)) as [string, string];
    const open = new OpenFiles({ opener: fsOpener() });
    const old = await open.acquire('a', a);
    const second = open.acquireOpen('a') as TestFile; // a second reader of the same descriptor
    await rename(b, a); // another daemon replaced the file
    open.drop('a');
    open.release(second);
    await settle();
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

  it('drop() during an open: the file opened is handed to its waiters but not kept, and closes on release', async () => {
    const [a] = (await files(1)) as [string];
    const opener = fsOpener();
    const open = new OpenFiles({ opener });
    const pending = open.acquire('a', a);
    open.drop('a');
    const file = await pending;
    expect(open.size).toBe(0);
    expect(open.acquireOpen('a')).toBeUndefined();
    open.release(file);
    await settle();
    expect(await target(file.fd)).not.toBe(a);
    open.release(await open.acquire('a', a));
    expect(opener.opens).toBe(2);
  });

  it('close() closes idle descriptors, the rest when released, and keeps none opened later', async () => {
    const [a, b] = (await files(2)) as [string, string];
    const open = new OpenFiles({ opener: fsOpener() });
    const idle = await open.acquire('a', a);
    open.release(idle);
    const busy = await open.acquire('b', b);
    open.close();
    await settle();
    expect(await target(idle.fd)).not.toBe(a);
    expect(await target(busy.fd)).toBe(b);
    open.release(busy);
    await settle();
    expect(await target(busy.fd)).not.toBe(b);
    const late = await open.acquire('a', a);
    expect(open.size).toBe(0);
    open.release(late);
    await settle();
    expect(await target(late.fd)).not.toBe(a);
  });

  it('a descriptor older than revalidateMs is not handed out again: the name is opened afresh', async () => {
    const [a] = (await files(1)) as [string];
    let now = 0;
    const opener = fsOpener();
    const open = new OpenFiles({ opener, now: () => now }, { revalidateMs: 1000 });
    const first = await open.acquire('a', a);
    now = 999;
    open.release(open.acquireOpen('a') as TestFile);
    now = 2000;
    expect(open.acquireOpen('a')).toBeUndefined();
    const second = await open.acquire('a', a);
    expect(second).not.toBe(first);
    expect(opener.opens).toBe(2);
    expect(await target(first.fd)).toBe(a); // still in use
    open.release(first);
    await settle();
    expect(await target(first.fd)).not.toBe(a);
    open.release(second);
  });

  it('a file unlinked while open stays readable through its descriptor', async () => {
    const [a] = (await files(1)) as [string];
    const open = new OpenFiles({ opener: fsOpener() });
    const f = await open.acquire('a', a);
    await unlink(a);
    expect(readAll(f.fd, f.size)).toBe('file 0');
    open.release(f);
    open.drop('a');
    await expect(open.acquire('a', a)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
