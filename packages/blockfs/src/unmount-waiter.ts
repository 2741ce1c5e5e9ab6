import type { Logger } from '@thfc/store';
import { abortableSleep } from './abortable-sleep.js';
import type { Mounted } from './mount.js';

/** How often a stopping daemon tries again to unmount a mount in use: one `fusermount -u` each time. */
export const DEFAULT_UNMOUNT_POLL_MS = 1_000;
/** A stopping daemon whose mount is in use says so once a minute, not at every try. */
export const DEFAULT_BUSY_LOG_MS = 60_000;

export interface UnmountWaiterComponents {
  readonly mounted: Pick<Mounted, 'unmountIfIdle' | 'mountpoint'>;
  readonly logger: Logger;
  /** What holds the mount, for the log line (mount-holders.ts); empty when nothing visible does. */
  readonly holders: () => Promise<string>;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * A stop asked for by SIGTERM or SIGINT: the mount is unmounted as soon as
 * nothing uses it, and until then it keeps serving, with one log line a
 * minute naming what holds it. Resolves `done` once unmounted and closed, or
 * `forced` when `signal` aborts first (a second signal): the caller then
 * detaches the mount lazily.
 */
export async function unmountWhenIdle(
  components: UnmountWaiterComponents,
  options: { why: string; signal: AbortSignal; pollMs?: number; logEveryMs?: number },
): Promise<'done' | 'forced'> {
  const { mounted, logger } = components;
  const now = components.now ?? Date.now;
  const sleep = components.sleep ?? abortableSleep;
  const logEvery = options.logEveryMs ?? DEFAULT_BUSY_LOG_MS;
  let lastLog: number | undefined;
  for (;;) {
    if (options.signal.aborted) return 'forced';
    const outcome = await mounted.unmountIfIdle();
    if (outcome === 'done') return 'done';
    const t = now();
    if (lastLog === undefined || t - lastLog >= logEvery) {
      lastLog = t;
      const who = outcome === 'busy' ? await components.holders().catch(() => '') : '';
      const state =
        outcome === 'busy'
          ? `${mounted.mountpoint} is in use${who ? ` (${who})` : ''}`
          : `${mounted.mountpoint} was detached lazily and still has users`;
      logger.info(
        `${options.why}: ${state}; serving until the last user is gone (send ${options.why} again to detach it now)`,
      );
    }
    await sleep(options.pollMs ?? DEFAULT_UNMOUNT_POLL_MS, options.signal);
  }
}
