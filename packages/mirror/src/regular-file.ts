import { close, constants, fstat, open } from 'node:fs';
import { MirrorUnavailableError } from '@thfc/format';
import type { FileOpener } from '@thfc/store';

/** A store file held open for serving. */
export interface OpenFile {
  readonly fd: number;
  readonly size: number;
  /** `dev:ino:size:mtime`: changes whenever the path names different bytes (files are replaced by rename). */
  readonly identity: string;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * Opens `path` read-only without following a final symlink; undefined unless
 * it is a regular file, so a symlink or directory planted in the store is
 * "not found", never followed. Any other failure to open is
 * MirrorUnavailableError (this store cannot answer: permissions, I/O,
 * descriptor exhaustion).
 */
export function openRegularFile(path: string): Promise<OpenFile | undefined> {
  return new Promise((resolve, reject) => {
    open(path, OPEN_FLAGS, (err, fd) => {
      if (err) {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'ELOOP') resolve(undefined);
        else reject(new MirrorUnavailableError(`store file ${path}`, err.message, { cause: err }));
        return;
      }
      fstat(fd, (e, st) => {
        if (e || !st.isFile()) {
          close(fd, () => {});
          if (e) reject(new MirrorUnavailableError(`store file ${path}`, e.message, { cause: e }));
          else resolve(undefined);
          return;
        }
        resolve({ fd, size: st.size, identity: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` });
      });
    });
  });
}

/** The store's block files, as OpenFiles opens them: regular files only, a missing one undefined. */
export const REGULAR_FILES: FileOpener<OpenFile | undefined> = {
  open: openRegularFile,
  close: (fd) => close(fd, () => {}),
};
