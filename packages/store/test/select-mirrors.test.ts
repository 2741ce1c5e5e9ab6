import { describe, expect, it } from 'vitest';
import { MirrorStats } from '../src/mirrors/mirror-stats.js';
import { mirrorScore, type RankingStats, selectMirrors } from '../src/mirrors/select-mirrors.js';

interface M {
  readonly name: string;
  readonly stats: RankingStats;
}

function m(name: string, stats: Partial<RankingStats> = {}): M {
  return {
    name,
    stats: { successes: 0, latencyMs: undefined, failureRate: 0, demotedUntil: 0, ...stats },
  };
}

const names = (ms: readonly M[]) => ms.map((x) => x.name);

describe('selectMirrors', () => {
  it('keeps the starting order while no mirror has enough samples', () => {
    const ms = [m('a', { successes: 2, latencyMs: 500 }), m('b', { successes: 2, latencyMs: 1 }), m('c')];
    expect(names(selectMirrors(ms, 0))).toEqual(['a', 'b', 'c']);
  });

  it('orders sampled mirrors by latency', () => {
    const ms = [
      m('a', { successes: 3, latencyMs: 50 }),
      m('b', { successes: 3, latencyMs: 10 }),
      m('c', { successes: 9, latencyMs: 30 }),
    ];
    expect(names(selectMirrors(ms, 0))).toEqual(['b', 'c', 'a']);
  });

  it('reorders sampled mirrors only among their own positions', () => {
    const ms = [
      m('a', { successes: 5, latencyMs: 80 }),
      m('new', { successes: 0 }),
      m('c', { successes: 5, latencyMs: 20 }),
    ];
    expect(names(selectMirrors(ms, 0))).toEqual(['c', 'new', 'a']);
  });

  it('weighs failures heavily: a fast but flaky mirror loses to a steady one', () => {
    const ms = [
      m('fast-flaky', { successes: 10, latencyMs: 5, failureRate: 0.1 }),
      m('steady', { successes: 10, latencyMs: 80, failureRate: 0 }),
    ];
    expect(names(selectMirrors(ms, 0))).toEqual(['steady', 'fast-flaky']);
    expect(mirrorScore(ms[0]?.stats as RankingStats)).toBe(5 + 0.1 * 10_000);
  });

  it('ties keep the starting order', () => {
    const ms = [m('a', { successes: 3, latencyMs: 10 }), m('b', { successes: 3, latencyMs: 10 })];
    expect(names(selectMirrors(ms, 0))).toEqual(['a', 'b']);
    expect(names(selectMirrors([...ms].reverse(), 0))).toEqual(['b', 'a']);
  });

  it('puts demoted mirrors last, the soonest to recover first', () => {
    const ms = [
      m('a', { demotedUntil: 300 }),
      m('b', { demotedUntil: 200 }),
      m('c', { successes: 0 }),
      m('d', { successes: 10, latencyMs: 1_000, failureRate: 0.9 }),
    ];
    expect(names(selectMirrors(ms, 100))).toEqual(['c', 'd', 'b', 'a']);
  });

  it('a mirror whose cool-off has passed is ranked normally again', () => {
    const ms = [m('a', { demotedUntil: 100 }), m('b')];
    expect(names(selectMirrors(ms, 99))).toEqual(['b', 'a']);
    expect(names(selectMirrors(ms, 100))).toEqual(['a', 'b']);
  });

  it('honours minSamples and failureCostMs', () => {
    const ms = [m('a', { successes: 1, latencyMs: 50 }), m('b', { successes: 1, latencyMs: 10, failureRate: 0.01 })];
    expect(names(selectMirrors(ms, 0))).toEqual(['a', 'b']);
    expect(names(selectMirrors(ms, 0, { minSamples: 1 }))).toEqual(['a', 'b']); // 10 + 100 > 50
    expect(names(selectMirrors(ms, 0, { minSamples: 1, failureCostMs: 1_000 }))).toEqual(['b', 'a']); // 10 + 10 < 50
  });

  it('is pure: the input is left as it was', () => {
    const ms = [m('a', { successes: 3, latencyMs: 50, demotedUntil: 10 }), m('b', { successes: 3, latencyMs: 1 })];
    const before = JSON.stringify(ms);
    selectMirrors(ms, 0);
    expect(JSON.stringify(ms)).toBe(before);
  });

  it('ranks MirrorStats records directly', () => {
    const a = { name: 'a', stats: new MirrorStats('http://a') };
    const b = { name: 'b', stats: new MirrorStats('http://b') };
    for (let i = 0; i < 3; i++) {
      a.stats.success(40, 1);
      b.stats.success(10, 1);
    }
    expect(names(selectMirrors([a, b], 0))).toEqual(['b', 'a']);
    b.stats.failure(new Error('HTTP 503'), 0);
    expect(names(selectMirrors([a, b], 0))).toEqual(['a', 'b']);
  });
});
