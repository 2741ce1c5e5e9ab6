import { type BigIntStats, close, fstat, open, rename, unlink, write } from 'node:fs';

/**
 * Puts bytes into a new file the way a cache must: written to `tmp` (created
 * exclusively) and renamed onto `path`, so a reader sees the whole file or
 * none; `tmp` is removed on failure. Resolves to the file's fstat taken on
 * the written descriptor after the rename (a rename sets the change time), so
 * the identity a caller records is that of the file it wrote, whatever is
 * put under `path` later. Rejects with the fs error (its `code` intact, e.g.
 * ENOSPC).
 *
 * Through libuv's thread pool with the callback API (open, write, rename,
 * fstat, close): fs/promises' writeFile cost the main thread about half as
 * much again per block (FileHandle objects and promise hops). Doing the
 * writes synchronously on the BlockWorkers thread was measured too and lost:
 * it serialised ~0.3-1 ms of file creation per block behind decoding on that
 * one thread (cold reads 140-177 against 144-231 MB/s, peak RSS ~15 MB higher).
 */
export function writeNewFile(tmp: string, path: string, bytes: Uint8Array): Promise<BigIntStats> {
  return new Promise((resolve, reject) => {
    open(tmp, 'wx', 0o644, (e, fd) => {
      if (e) return reject(e);
      const fail = (err: Error, renamed = false) =>
        close(fd, () => (renamed ? reject(err) : unlink(tmp, () => reject(err))));
      const finish = () =>
        rename(tmp, path, (re) => {
          if (re) return fail(re);
          fstat(fd, { bigint: true }, (se, st) => {
            if (se) return fail(se, true);
            close(fd, (ce) => (ce ? reject(ce) : resolve(st)));
          });
        });
      const writeFrom = (offset: number) =>
        write(fd, bytes, offset, bytes.length - offset, null, (we, n) => {
          if (we) return fail(we);
          if (offset + n < bytes.length) return writeFrom(offset + n);
          finish();
        });
      writeFrom(0);
    });
  });
}
