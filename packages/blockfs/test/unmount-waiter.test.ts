import { MemoryLogger } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import { unmountWhenIdle } from '../src/unmount-waiter.js';

type Outcome = 'busy' | 'detached' | 'done';

/** A mount whose unmountIfIdle answers from a script, and a clock that moves only when the waiter sleeps. */
function rig(script: (tries: number) => Outcome) {
  let t = 0;
  let tries = 0;
  const logger = new MemoryLogger();
  const components = {
    mounted: { mountpoint: '/mnt/x', unmountIfIdle: async () => script(++tries) },
    logger,
    holders: async () => 'pid 7 (qemu) has disk open',
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
  return { components, logger, tries: () => tries };
}

describe('unmountWhenIdle', () => {
  it('an idle mount is unmounted at the first try, with no line', async () => {
    const { components, logger } = rig(() => 'done');
    const r = await unmountWhenIdle(components, { why: 'SIGTERM', signal: new AbortController().signal });
    expect(r).toBe('done');
    expect(logger.lines).toEqual([]);
  });

  it('a busy mount is tried every second and logged once a minute, naming its holders, until it is free', async () => {
    // Busy for 150 tries (150 s), then free.
    const { components, logger, tries } = rig((n) => (n <= 150 ? 'busy' : 'done'));
    const r = await unmountWhenIdle(components, { why: 'SIGTERM', signal: new AbortController().signal });
    expect(r).toBe('done');
    expect(tries()).toBe(151);
    expect(logger.lines).toHaveLength(3); // at 0, 60 and 120 s
    expect(logger.lines[0]).toBe(
      'INFO SIGTERM: /mnt/x is in use (pid 7 (qemu) has disk open); serving until the last user is gone (send SIGTERM again to detach it now)',
    );
  });

  it('a lazily detached mount with users says so; an abort (a second signal) ends the wait as forced', async () => {
    const ac = new AbortController();
    const { components, logger } = rig((n) => {
      if (n === 3) ac.abort();
      return 'detached';
    });
    const r = await unmountWhenIdle(components, { why: 'SIGINT', signal: ac.signal });
    expect(r).toBe('forced');
    expect(logger.lines).toEqual([
      'INFO SIGINT: /mnt/x was detached lazily and still has users; serving until the last user is gone (send SIGINT again to detach it now)',
    ]);
  });
});
