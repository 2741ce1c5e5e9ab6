import { close, open, rename, unlink, write } from 'node:fs';

/**
 * Puts bytes into a new file the way a cache must: written to `tmp` (created
 * exclusively) and renamed onto `path`, so a reader sees the whole file or
 * none; `tmp` is removed on failure. Rejects with the fs error (its `code`
 * intact, e.g. ENOSPC).
 *
 * Through libuv's thread pool with the callback API (open, write, close,
 * rename): fs/promises' writeFile cost the main thread about half as much
 * again per block (FileHandle objects and promise hops). Doing the writes
 * synchronously on the BlockWorkers thread was measured too and lost: it
 * serialised ~0.3-1 ms of file creation per block behind decoding on that one
 * thread (cold reads 140-177 against 144-231 MB/s, peak RSS ~15 MB higher).
 */
export function writeNewFile(tmp: string, path: string, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => unlink(tmp, () => reject(e));
    open(tmp, 'wx', 0o644, (e, fd) => {
      if (e) return reject(e);
      const finish = (we: Error | null) =>
        close(fd, (ce) => {
          const err = we ?? ce;
          if (err) return fail(err);
          rename(tmp, path, (re) => (re ? fail(re) : resolve()));
        });
      const writeFrom = (offset: number) =>
        write(fd, bytes, offset, bytes.length - offset, null, (we, n) => {
          if (we) return finish(we);
          if (offset + n < bytes.length) return writeFrom(offset + n);
          finish(null);
        });
      writeFrom(0);
    });
  });
}
