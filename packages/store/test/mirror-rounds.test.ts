import { BlockNotFoundError, MirrorUnavailableError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import type { FailoverMirror } from '../src/sources/failover.js';
import { LowSpeedError } from '../src/sources/low-speed-error.js';
import { MirrorRounds } from '../src/sources/mirror-rounds.js';

/** MirrorRounds, the order one Failover.get asks its mirrors in: rounds, not-found skipping, stall rounds. */

/** Only identity matters to MirrorRounds. */
const mirror = (name: string) => ({ name }) as unknown as FailoverMirror;
const names = (m: FailoverMirror | undefined) => (m as unknown as { name: string } | undefined)?.name;

function drain(r: MirrorRounds): string[] {
  const out: string[] = [];
  for (let n = r.next(); n; n = r.next()) out.push(`${n.round}:${names(n.mirror)}`);
  return out;
}

describe('MirrorRounds', () => {
  const [a, b, c] = [mirror('a'), mirror('b'), mirror('c')] as [FailoverMirror, FailoverMirror, FailoverMirror];

  it('hands out every mirror in rank order, round after round, re-ranking at each round', () => {
    let ranks = 0;
    const r = new MirrorRounds(
      2,
      () => (ranks++ === 0 ? [a, b, c] : [c, b, a]),
      () => 3,
      4,
    );
    expect(r.hasNext()).toBe(true);
    expect(drain(r)).toEqual(['1:a', '1:b', '1:c', '2:c', '2:b', '2:a']);
    expect(r.hasNext()).toBe(false);
    expect(r.canRetry()).toBe(false);
  });

  it('skips a mirror that answered not found, in this round and the next, and keeps its other failures', () => {
    const r = new MirrorRounds(
      2,
      () => [a, b, c],
      () => 3,
      4,
    );
    expect(names(r.next()?.mirror)).toBe('a');
    r.failed(a, new MirrorUnavailableError('a', 'down'));
    r.failed(c, new BlockNotFoundError('x', 'c'));
    expect(names(r.upcoming())).toBe('b');
    expect(drain(r)).toEqual(['1:b', '2:a', '2:b']);
    expect([...r.lastFailure.keys()].map(names)).toEqual(['a']);
  });

  it('gives a stalled body one more round per stall, up to the cap', () => {
    const r = new MirrorRounds(
      1,
      () => [a],
      () => 1,
      2,
    );
    const asked: string[] = [];
    for (let n = r.next(); n; n = r.next()) {
      asked.push(`${n.round}`);
      r.failed(a, new LowSpeedError('a', 'too slow'));
    }
    expect(asked).toEqual(['1', '2', '3']);
    expect(r.rounds).toBe(3);
  });

  it('stops when every mirror answered not found', () => {
    const r = new MirrorRounds(
      5,
      () => [a, b],
      () => 2,
      4,
    );
    for (let n = r.next(); n; n = r.next()) r.failed(n.mirror, new BlockNotFoundError('x', 'm'));
    expect(r.round).toBe(2);
    expect(r.canRetry()).toBe(false);
  });
});
