import type { Logger } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import { type SwitchableMount, VersionSwitcher } from '../src/version-switch.js';

const lines: string[] = [];
const logger: Logger = {
  info: (m: string) => void lines.push(`I ${m}`),
  fault: (m: string) => void lines.push(`F ${m}`),
  verbose: () => {},
};

/** A mount serving `digests`, whose locations now hold `latest`, busy for the first `busyFor` idle checks. */
function fakeMount(digests: Record<string, string>, latest: Record<string, string>, busyFor = 0) {
  let checks = 0;
  const calls: string[] = [];
  const m: SwitchableMount & { calls: string[] } = {
    calls,
    digests: () => new Map(Object.entries(digests)),
    latestVersions: async () => new Map(Object.entries(latest)),
    unmountIfIdle: async () => {
      calls.push('unmountIfIdle');
      return checks++ < busyFor ? 'busy' : 'done';
    },
  };
  return m;
}

describe('VersionSwitcher', () => {
  it('does nothing when every image is the latest', async () => {
    const m = fakeMount({ a: 'd1' }, { a: 'd1' });
    const s = new VersionSwitcher({ current: () => m, remount: async () => m, fallback: async () => m, logger });
    await s.request('test', new AbortController().signal);
    expect(s.status().state).toBe('up-to-date');
    expect(m.calls).toEqual([]);
  });

  it('waits while the mount is busy, then remounts and reports the new digests', async () => {
    const m = fakeMount({ a: 'd1', b: 'e1' }, { a: 'd2', b: 'e1' }, 2);
    const next = fakeMount({ a: 'd2', b: 'e1' }, { a: 'd2', b: 'e1' });
    let remounts = 0;
    const s = new VersionSwitcher(
      {
        current: () => m,
        remount: async () => {
          remounts++;
          return next;
        },
        fallback: async () => m,
        logger,
      },
      { retryMs: 10 },
    );
    const states: string[] = [];
    const done = s.request('test', new AbortController().signal);
    const poll = setInterval(() => states.push(s.status().state), 2);
    await done;
    clearInterval(poll);
    expect(states).toContain('waiting');
    expect(m.calls).toEqual(['unmountIfIdle', 'unmountIfIdle', 'unmountIfIdle']);
    expect(remounts).toBe(1);
    expect(s.status()).toMatchObject({ state: 'switched', from: { a: 'd1', b: 'e1' }, to: { a: 'd2', b: 'e1' } });
    expect(lines.some((l) => l.includes('switched a from d1 to d2'))).toBe(true);
    expect(lines.some((l) => l.includes('switched b'))).toBe(false);
  });

  it('mounts the old versions again by digest when the new ones do not mount', async () => {
    const m = fakeMount({ a: 'd1' }, { a: 'd2' });
    let fellBackTo: Map<string, string> | undefined;
    const s = new VersionSwitcher({
      current: () => m,
      remount: async () => {
        throw new Error('mirror gone');
      },
      fallback: async (d) => {
        fellBackTo = d;
        return m;
      },
      logger,
    });
    await s.request('test', new AbortController().signal);
    expect(fellBackTo).toEqual(new Map([['a', 'd1']]));
    expect(s.status()).toMatchObject({ state: 'failed', message: 'the new versions did not mount: mirror gone' });
  });

  it('stops waiting when aborted (the daemon is stopping), and folds requests made during a switch', async () => {
    const m = fakeMount({ a: 'd1' }, { a: 'd2' }, 1_000);
    const s = new VersionSwitcher(
      { current: () => m, remount: async () => m, fallback: async () => m, logger },
      { retryMs: 5 },
    );
    const ac = new AbortController();
    const first = s.request('one', ac.signal);
    const second = s.request('two', ac.signal);
    expect(second).toBe(first);
    expect(s.status().requests).toBe(2);
    await new Promise((r) => setTimeout(r, 40));
    ac.abort();
    await first;
    expect(s.status().state).toBe('waiting');
  });
});
