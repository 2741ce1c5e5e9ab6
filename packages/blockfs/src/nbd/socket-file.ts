import { chmod, chown, lstat, mkdtemp, rename, rm } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '@thfc/format';

/**
 * A Unix socket that is never reachable with the wrong permissions: the
 * server listens inside a fresh private (0700) directory, the socket is set
 * to 0600 (0660 and the group with `gid`), and only then renamed to `path`.
 * The rename also replaces, atomically, the socket of a daemon that died, so
 * a restarted daemon takes over the same path its clients reconnect to.
 * Resolves to the socket's inode, by which close() knows it is still ours.
 */
export async function listenOnSocketFile(
  server: Server,
  path: string,
  options: { gid?: number | undefined; replace?: boolean | undefined } = {},
): Promise<number> {
  const { gid } = options;
  await refuseForeign(path, !options.replace);
  const dir = await mkdtemp(join(dirname(path), `.${basename(path)}.`));
  try {
    const tmp = join(dir, 's');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(tmp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (gid !== undefined) await chown(tmp, -1, gid);
    await chmod(tmp, gid === undefined ? 0o600 : 0o660);
    await rename(tmp, path);
    return (await lstat(path)).ino;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Removes the socket file if it is still the one `ino` names (a newer daemon may have replaced it). */
export async function removeSocketFile(path: string, ino: number): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st?.ino === ino) await rm(path, { force: true });
}

/**
 * A path that is not a socket is never replaced; a socket someone still
 * answers on is another daemon's, replaced only when asked to (--replace).
 */
async function refuseForeign(path: string, refuseLive: boolean): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new UsageError(`${path} exists and is not a socket; choose another --socket`);
  if (!refuseLive) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new UsageError(`${path}: another server is listening on it (take over with --replace)`);
}
