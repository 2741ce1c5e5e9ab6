import type { Logger } from '@thfc/store';
import { abortableSleep } from './abortable-sleep.js';

/** What the last switch request came to, for `stats` and `httpstorged switch`. */
export interface SwitchStatus {
  /** Requests so far (SIGUSR2, --auto-switch): a waiting command knows its answer by this count. */
  readonly requests: number;
  /**
   * `checking`: asking the index locations; `waiting`: a newer version is
   * there and the images are in use; `switched`; `up-to-date`; `failed`
   * (the mount goes on with the version it had).
   */
  readonly state: 'idle' | 'checking' | 'waiting' | 'switched' | 'up-to-date' | 'failed';
  /** name → digest mounted before the switch, and after (for `switched`). */
  readonly from: Readonly<Record<string, string>>;
  readonly to: Readonly<Record<string, string>>;
  readonly message: string | null;
  readonly at: string | null;
}

/** The mount as the switcher sees it: what it serves, what its indexes hold now, and its idle-only unmount. */
export interface SwitchableMount {
  /** name → digest of each image mounted. */
  digests(): Map<string, string>;
  /** name → digest each index location holds now (fetched quietly, and cached for the remount). */
  latestVersions(): Promise<Map<string, string>>;
  unmountIfIdle(): Promise<'busy' | 'detached' | 'done'>;
}

/**
 * Five seconds: an image that was just closed is usually closed for good (a
 * guest that powered off), and asking the kernel whether the mount is busy
 * costs one failed umount(2).
 */
export const DEFAULT_SWITCH_RETRY_MS = 5_000;

/**
 * Moves a mount to the versions its index locations now publish, and only
 * once nothing uses it: the bytes a reader sees never change under it
 * (docs/httpstorged.md, Switching versions). A switch is an unmount when idle
 * followed by a fresh mount of the same arguments (blocks the versions share
 * stay cached); if that mount fails, `fallback` mounts the old versions again
 * by digest, from the index cache. One switch runs at a time; a request
 * during one is folded into it.
 */
export class VersionSwitcher {
  private state: SwitchStatus = { requests: 0, state: 'idle', from: {}, to: {}, message: null, at: null };
  private running: Promise<void> | undefined;

  constructor(
    private readonly components: {
      readonly current: () => SwitchableMount;
      /** Mounts the same arguments again; resolves with the new mount, now current. */
      readonly remount: () => Promise<SwitchableMount>;
      /** Mounts the given versions again (name → digest), after a failed remount. */
      readonly fallback: (digests: Map<string, string>) => Promise<SwitchableMount>;
      readonly logger: Logger;
      readonly now?: () => Date;
    },
    private readonly options: { readonly retryMs?: number } = {},
  ) {}

  status(): SwitchStatus {
    return this.state;
  }

  /** Asks for a switch; resolves when this request has an outcome (switched, up to date, failed or abandoned). */
  request(why: string, signal: AbortSignal): Promise<void> {
    this.set({ requests: this.state.requests + 1 });
    this.running ??= this.run(why, signal).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(why: string, signal: AbortSignal): Promise<void> {
    const { logger } = this.components;
    this.set({ state: 'checking', message: null });
    const mount = this.components.current();
    const from = mount.digests();
    let latest: Map<string, string>;
    try {
      latest = await mount.latestVersions();
    } catch (e) {
      this.set({ state: 'failed', message: `cannot read the indexes: ${(e as Error).message}` });
      logger.fault(`switch (${why}): cannot read the indexes (${(e as Error).message}); keeping what is mounted`);
      return;
    }
    const changed = [...latest].filter(([name, digest]) => from.get(name) !== digest);
    if (changed.length === 0) {
      this.set({ state: 'up-to-date', from: Object.fromEntries(from), to: Object.fromEntries(from) });
      logger.info(`switch (${why}): every image is the latest version already`);
      return;
    }
    const names = changed.map(([n]) => n).join(', ');
    let waitingLogged = false;
    for (;;) {
      if (signal.aborted) return;
      const outcome = await mount.unmountIfIdle();
      if (outcome === 'done') break;
      if (outcome === 'detached') {
        this.set({ state: 'failed', message: 'the mount was detached lazily; the daemon exits after its last user' });
        return;
      }
      if (!waitingLogged) {
        logger.info(`switch (${why}): a newer version of ${names} is published; switching once nothing uses it`);
        waitingLogged = true;
      }
      this.set({ state: 'waiting', from: Object.fromEntries(from), to: Object.fromEntries(latest) });
      await abortableSleep(this.options.retryMs ?? DEFAULT_SWITCH_RETRY_MS, signal);
    }
    try {
      const next = await this.components.remount();
      const to = next.digests();
      this.set({ state: 'switched', from: Object.fromEntries(from), to: Object.fromEntries(to) });
      for (const [name, digest] of to)
        if (from.get(name) !== digest) logger.info(`switched ${name} from ${from.get(name)} to ${digest}`);
    } catch (e) {
      const why2 = (e as Error).message;
      logger.fault(`switch: the new versions did not mount (${why2}); mounting the old ones again`);
      try {
        await this.components.fallback(from);
        this.set({ state: 'failed', message: `the new versions did not mount: ${why2}` });
      } catch (e2) {
        this.set({ state: 'failed', message: `nothing could be mounted again: ${(e2 as Error).message}` });
        throw e2;
      }
    }
  }

  private set(patch: Partial<SwitchStatus>): void {
    this.state = { ...this.state, ...patch, at: (this.components.now?.() ?? new Date()).toISOString() };
  }
}
