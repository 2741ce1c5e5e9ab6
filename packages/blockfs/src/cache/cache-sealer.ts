import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blockPath, IndexFormatError } from '@thfc/format';
import { type Logger, SILENT_LOGGER, syncDir, writeFileAtomic } from '@thfc/store';
import { type FileIdentity, identityOf } from '../io/file-identity.js';
import { decodeSeal, encodeSeal } from './cache-seal.js';
import { withLockFile } from './lock-file.js';
import { type ProcessIdentity, processState, thisProcess } from './process-identity.js';

/** The seal of a cache: CACHE/seal (docs/FORMAT.md §11). */
export const SEAL_FILE = 'seal';
/** Taken to read, merge and write the seal, and to clear registrations of daemons that are gone. */
export const SEAL_LOCK = 'seal.lock';
/** One empty file per daemon using the cache, named BOOT-ID.PID.START-TIME.NONCE. */
export const DAEMONS_DIR = 'daemons';

export interface CacheSealerOptions {
  readonly dir: string;
  /** How long to wait for the seal lock (see DEFAULT_LOCK_WAIT_MS). */
  readonly lockWaitMs?: number | undefined;
}

/**
 * 60 s for `sync -f` before a seal is written: it flushes every dirty page of
 * the cache's file system, which after a cold read of a large image is a few
 * hundred MB; a disk slower than that is better left unsealed than holding up
 * a shutdown.
 */
const SYNC_TIMEOUT_MS = 60_000;

/** What the registry of a cache shows: daemons running, gone without a clean stop, or of an earlier boot. */
export interface CacheUsers {
  readonly live: readonly ProcessIdentity[];
  /** Daemons that stopped without a clean stop in this boot (killed, crashed): their registrations were removed. */
  readonly gone: readonly ProcessIdentity[];
  /** A daemon that was registered when the machine went down: the seal was void and was removed. */
  readonly earlierBoot: readonly ProcessIdentity[];
}

/**
 * The I/O side of a cache's seal and of its registry of daemons.
 *
 * A daemon registers (open()) before it serves, and at its clean stop merges
 * what it verified into the seal and deregisters (seal()). The seal is a list
 * of entries each with the identity of the file that was verified; a start
 * trusts an entry only while its file has that identity, so the seal needs no
 * invalidation while daemons run, and a daemon killed in this boot voids
 * nothing: the file system's view of every file (its change time) is intact,
 * and entries written or changed since the seal have other identities. What
 * a seal cannot survive is the machine going down: a change whose data
 * reached the disk while its inode update did not would keep an old identity.
 * So a registration left from an earlier boot (the machine went down while
 * that daemon ran) voids the seal: it is removed, and every entry is checked
 * on first use. Before a seal is written, the cache's file system is synced
 * (`sync -f`), so every entry it lists is on the disk before the seal is.
 *
 * Several daemons share one cache (/var/tmp/blocks): a seal is merged, never
 * replaced. Under the seal lock, the entries the stopping daemon verified and
 * the entries of the seal already there are kept if the file under each name
 * still has the identity recorded (one stat per entry). The lock is best
 * effort (withLockFile): a merge lost to a race costs checks at the next
 * start, never a wrong byte.
 */
export class CacheSealer {
  private registration: string | undefined;

  constructor(
    private readonly components: {
      logger?: Logger | undefined;
      /** This process (tests); the real one if not given. */
      self?: ProcessIdentity | undefined;
      /** Makes everything written to the cache's file system durable; `sync -f DIR` if not given. */
      syncFs?: ((dir: string, signal?: AbortSignal) => Promise<void>) | undefined;
    },
    private readonly options: CacheSealerOptions,
  ) {}

  get sealPath(): string {
    return join(this.options.dir, SEAL_FILE);
  }

  /**
   * At a daemon's start, before it serves: registers it as a user of the
   * cache, and returns the entries the seal vouches for (block id → identity
   * of the verified file). None when there is no seal, when it is damaged, or
   * when it is void (see the class); one log line says which.
   */
  async open(signal?: AbortSignal): Promise<ReadonlyMap<string, FileIdentity>> {
    const { dir } = this.options;
    try {
      await mkdir(join(dir, DAEMONS_DIR), { recursive: true });
      return await this.locked(signal, async () => {
        const users = await this.survey();
        await this.register();
        this.report(users);
        if (users.earlierBoot.length) return new Map();
        return this.readSeal();
      });
    } catch (e) {
      signal?.throwIfAborted();
      // A cache this daemon cannot write (another user's) still serves: it is only checked, never sealed.
      this.logger.fault(`cache ${dir}: seal not read (${(e as Error).message}): every entry is checked on first use`);
      if (!this.registration) await this.register().catch(() => {});
      return new Map();
    }
  }

  /**
   * At a clean stop (or at the end of fsck, with every entry it hashed):
   * merges `verified` into the seal (see the class), makes it durable, then
   * deregisters this daemon. Resolves to the number of entries sealed;
   * rejects if it could not seal (the registration is removed all the same:
   * the stop was clean, and the old seal stays as true as it was).
   */
  async seal(verified: Iterable<readonly [string, FileIdentity]>, signal?: AbortSignal): Promise<number> {
    try {
      return await this.locked(signal, async () => {
        const old = await this.readSeal({ quiet: true });
        const merged = this.merge(verified, old);
        await (this.components.syncFs ?? syncFs)(this.options.dir, signal);
        await writeFileAtomic(this.sealPath, encodeSeal(merged), { durable: true, signal });
        return merged.size;
      });
    } finally {
      await this.deregister();
    }
  }

  /**
   * At a start that failed after open() (the daemon never served): removes
   * this daemon's registration, if it made one, and writes no seal. The seal
   * stays as true as it was; nothing verified here is added to it.
   */
  async leave(): Promise<void> {
    await this.deregister();
  }

  /**
   * The daemons using the cache (for fsck): removes the registrations of
   * daemons that are gone, and the seal if one was of an earlier boot.
   */
  async users(signal?: AbortSignal): Promise<CacheUsers> {
    await mkdir(join(this.options.dir, DAEMONS_DIR), { recursive: true });
    return this.locked(signal, () => this.survey());
  }

  private get logger(): Logger {
    return this.components.logger ?? SILENT_LOGGER;
  }

  private locked<T>(signal: AbortSignal | undefined, body: () => Promise<T>): Promise<T> {
    return withLockFile(join(this.options.dir, SEAL_LOCK), body, {
      signal,
      waitMs: this.options.lockWaitMs,
      self: this.components.self,
    });
  }

  /** Reads the registry; removes registrations of daemons that are gone, and the seal if one is of an earlier boot. */
  private async survey(): Promise<CacheUsers> {
    const dir = join(this.options.dir, DAEMONS_DIR);
    const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    const live: ProcessIdentity[] = [];
    const gone: ProcessIdentity[] = [];
    const earlierBoot: ProcessIdentity[] = [];
    for (const name of names) {
      const p = parseRegistration(name);
      if (!p) continue; // not ours: left alone
      const state = processState(p);
      if (state === 'running') {
        live.push(p);
        continue;
      }
      (state === 'gone' ? gone : earlierBoot).push(p);
      await unlink(join(dir, name)).catch(() => {});
    }
    if (earlierBoot.length) await unlink(this.sealPath).catch(() => {});
    if (gone.length || earlierBoot.length) {
      await syncDir(dir);
      await syncDir(this.options.dir);
    }
    return { live, gone, earlierBoot };
  }

  private report(users: CacheUsers): void {
    const { dir } = this.options;
    for (const p of users.gone) {
      this.logger.info(
        `cache ${dir}: httpstorged pid ${p.pid} stopped without a clean stop (killed or crashed); the entries it wrote are checked on first use`,
      );
    }
    if (users.earlierBoot.length) {
      const pids = users.earlierBoot.map((p) => p.pid).join(', ');
      this.logger.fault(
        `cache ${dir}: the machine went down while httpstorged (pid ${pids}) was using it: its seal is void, every entry is checked on first use`,
      );
    }
  }

  /** The seal's entries; none (with a log line unless quiet) when it is missing or damaged. */
  private async readSeal(options: { quiet?: boolean } = {}): Promise<Map<string, FileIdentity>> {
    const { dir } = this.options;
    let bytes: Buffer;
    try {
      bytes = await readFile(this.sealPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (!options.quiet) this.logger.info(`cache ${dir}: no seal: every entry is checked on first use`);
      return new Map();
    }
    try {
      const entries = decodeSeal(bytes, this.sealPath);
      if (!options.quiet) {
        this.logger.info(
          `cache ${dir}: the seal vouches for ${entries.size} entries, each while its file is unchanged`,
        );
      }
      return entries;
    } catch (e) {
      if (!(e instanceof IndexFormatError)) throw e;
      if (!options.quiet) {
        this.logger.fault(`cache ${dir}: damaged seal (${e.message}): every entry is checked on first use`);
      }
      return new Map();
    }
  }

  /** The entries of `verified`, then of `old`, whose file under the name still has the identity recorded. */
  private merge(
    verified: Iterable<readonly [string, FileIdentity]>,
    old: ReadonlyMap<string, FileIdentity>,
  ): Map<string, FileIdentity> {
    const merged = new Map<string, FileIdentity>();
    const seen = new Map<string, FileIdentity | undefined>();
    const current = (id: string) => {
      if (!seen.has(id)) seen.set(id, identityAt(join(this.options.dir, blockPath(id))));
      return seen.get(id);
    };
    for (const [id, identity] of verified) if (current(id) === identity) merged.set(id, identity);
    for (const [id, identity] of old) if (!merged.has(id) && current(id) === identity) merged.set(id, identity);
    return merged;
  }

  private async register(): Promise<void> {
    const self = this.components.self ?? thisProcess();
    const name = `${self.bootId}.${self.pid}.${self.startTime}.${randomBytes(4).toString('hex')}`;
    const dir = join(this.options.dir, DAEMONS_DIR);
    await writeFile(join(dir, name), '', { flag: 'wx', mode: 0o644 });
    // Durable before the daemon serves: after a crash of the machine, it must be found.
    await syncDir(dir);
    this.registration = name;
  }

  private async deregister(): Promise<void> {
    const name = this.registration;
    if (!name) return;
    this.registration = undefined;
    const dir = join(this.options.dir, DAEMONS_DIR);
    await unlink(join(dir, name)).catch(() => {});
    await syncDir(dir).catch(() => {});
  }
}

/** BOOT-ID.PID.START-TIME.NONCE read back; undefined for any other name. */
export function parseRegistration(name: string): ProcessIdentity | undefined {
  const m = /^([0-9a-f-]{1,64})\.([1-9]\d{0,9})\.(\d{1,20})\.[0-9a-f]{8}$/.exec(name);
  return m ? { bootId: m[1] as string, pid: Number(m[2]), startTime: m[3] as string } : undefined;
}

/** The identity of the regular file at `path` now; undefined if there is none. Synchronous: a stat per entry. */
export function identityAt(path: string): FileIdentity | undefined {
  try {
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    return st?.isFile() ? identityOf(st) : undefined;
  } catch {
    return undefined;
  }
}

function syncFs(dir: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('sync', ['-f', dir], { timeout: SYNC_TIMEOUT_MS, signal }, (e) => (e ? reject(e) : resolve())),
  );
}
