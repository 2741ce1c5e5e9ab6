import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreIoError } from '@thfc/format';
import { formatProcess, type ProcessIdentity, parseProcess, processState, thisProcess } from './process-identity.js';

export interface LockFileOptions {
  /** How long to wait for a live holder before giving up (DEFAULT_LOCK_WAIT_MS). */
  readonly waitMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** The process taking the lock (tests); this one if not given. */
  readonly self?: ProcessIdentity | undefined;
}

/**
 * 10 s: the work done under a cache's lock (reading and writing its seal,
 * a stat per entry) takes well under a second for 100,000 entries, and at a
 * machine's shutdown every daemon seals at once and queues here; past 10 s
 * the holder is stuck, and waiting longer would hold up a shutdown.
 */
export const DEFAULT_LOCK_WAIT_MS = 10_000;

/** Between two looks at a held lock: short against the work it guards. */
const POLL_MS = 20;

/**
 * Runs `body` holding the lock file `path`. The lock file is made whole
 * under a temp name and linked into place (link fails if the name exists),
 * so it always names its holder (formatProcess). A holder that is gone, or
 * of an earlier boot, or a lock that names no one, is broken: it is removed
 * and taken. Rejects with StoreIoError when a live holder keeps it past
 * `waitMs`.
 *
 * Advisory and best effort: two processes that break the same dead holder's
 * lock at once may both end up holding it. Use it only where that costs
 * work, never correctness (a seal merge: an entry lost from the seal is
 * checked again, see CacheSealer).
 */
export async function withLockFile<T>(path: string, body: () => Promise<T>, options: LockFileOptions = {}): Promise<T> {
  const self = options.self ?? thisProcess();
  const tmp = `${path}.${self.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, `${formatProcess(self)}\n`, { mode: 0o644 });
  const deadline = Date.now() + (options.waitMs ?? DEFAULT_LOCK_WAIT_MS);
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      try {
        await link(tmp, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const text = await readFile(path, 'latin1').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined; // released meanwhile: try again
        throw e;
      });
      if (text === undefined) continue;
      const holder = parseProcess(text);
      if (!holder || processState(holder) !== 'running') {
        await unlink(path).catch(() => {});
        continue;
      }
      if (Date.now() >= deadline) {
        throw new StoreIoError(
          `${path} is held by pid ${holder.pid} for longer than ${options.waitMs ?? DEFAULT_LOCK_WAIT_MS} ms`,
        );
      }
      await sleep(POLL_MS, undefined, { signal: options.signal });
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  try {
    return await body();
  } finally {
    await unlink(path).catch(() => {});
  }
}
