import { BlockCorruptError, MirrorUnavailableError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import {
  CORRUPT_WEIGHT,
  DEFAULT_COOL_OFF_MS,
  DEFAULT_MAX_COOL_OFF_MS,
  MirrorStats,
} from '../src/mirrors/mirror-stats.js';

const down = new MirrorUnavailableError('http(a)', 'HTTP 503');
const corrupt = new BlockCorruptError('ab'.repeat(20), 'http(a)', 'content hashes to cd…');

describe('MirrorStats', () => {
  it('starts empty and ok', () => {
    const s = new MirrorStats('http://a');
    expect(s.snapshot(0)).toEqual({
      url: 'http://a',
      state: 'ok',
      latencyMs: null,
      requests: 0,
      errors: 0,
      notFound: 0,
      bytes: 0,
      lastError: null,
      window: null,
    });
    expect(s.isDemoted(0)).toBe(false);
  });

  it('counts successes, bytes and a latency EWMA seeded by the first sample', () => {
    const s = new MirrorStats('http://a');
    s.success(10, 100);
    expect(s.latencyMs).toBe(10);
    s.success(20, 50);
    expect(s.latencyMs).toBeCloseTo(12, 6); // 10 + 0.2 × (20 − 10)
    expect(s).toMatchObject({ requests: 2, successes: 2, bytes: 150, failures: 0 });
    expect(s.snapshot(0).latencyMs).toBe(12);
  });

  it('one slow sample barely moves the latency', () => {
    const s = new MirrorStats('http://a');
    for (let i = 0; i < 20; i++) s.success(5, 1);
    s.success(1_000, 1);
    expect(s.latencyMs).toBeLessThan(250);
    expect(s.latencyMs).toBeGreaterThan(5);
  });

  it('a failure demotes for the cool-off and records the error', () => {
    const s = new MirrorStats('http://a');
    s.failure(down, 1_000);
    expect(s.demotedUntil).toBe(1_000 + DEFAULT_COOL_OFF_MS);
    expect(s.isDemoted(1_000 + DEFAULT_COOL_OFF_MS - 1)).toBe(true);
    expect(s.isDemoted(1_000 + DEFAULT_COOL_OFF_MS)).toBe(false);
    expect(s.snapshot(1_000)).toMatchObject({ state: 'demoted', errors: 1, requests: 1, lastError: down.message });
    expect(s.snapshot(1_000 + DEFAULT_COOL_OFF_MS).state).toBe('ok');
    expect(s.failureRate).toBeCloseTo(0.2, 6);
  });

  it('consecutive failures double the cool-off up to the cap', () => {
    const s = new MirrorStats('http://a');
    const coolOffs: number[] = [];
    for (let i = 0; i < 6; i++) {
      s.failure(down, 0);
      coolOffs.push(s.demotedUntil);
    }
    expect(coolOffs).toEqual([30_000, 60_000, 120_000, 240_000, 300_000, 300_000]);
    expect(DEFAULT_MAX_COOL_OFF_MS).toBe(300_000);
    expect(s.consecutiveFailures).toBe(6);
  });

  it('honours custom cool-off options', () => {
    const s = new MirrorStats('http://a', { coolOffMs: 100, maxCoolOffMs: 250 });
    s.failure(down, 0);
    expect(s.demotedUntil).toBe(100);
    s.failure(down, 0);
    expect(s.demotedUntil).toBe(200);
    s.failure(down, 0);
    expect(s.demotedUntil).toBe(250);
  });

  it('bad bytes count heavier than a timeout: longer cool-off, higher failure rate', () => {
    const timedOut = new MirrorStats('http://a');
    const lied = new MirrorStats('http://b');
    timedOut.failure(new MirrorUnavailableError('http(a)', 'timeout after 10000 ms'), 0);
    lied.failure(corrupt, 0);
    expect(lied.demotedUntil).toBe(DEFAULT_COOL_OFF_MS * CORRUPT_WEIGHT);
    expect(lied.demotedUntil).toBeGreaterThan(timedOut.demotedUntil);
    expect(lied.failureRate).toBeCloseTo(1 - 0.8 ** CORRUPT_WEIGHT, 6);
    expect(lied.failureRate).toBeGreaterThan(timedOut.failureRate);
    expect(lied.failures).toBe(1);
  });

  it('a success resets the failure streak, ends the cool-off and decays the failure rate', () => {
    const s = new MirrorStats('http://a');
    s.failure(down, 0);
    s.failure(down, 0);
    const rate = s.failureRate;
    s.success(5, 10);
    expect(s.consecutiveFailures).toBe(0);
    expect(s.isDemoted(0)).toBe(false);
    expect(s.failureRate).toBeCloseTo(rate * 0.8, 6);
    s.failure(down, 0);
    expect(s.demotedUntil).toBe(DEFAULT_COOL_OFF_MS); // back to the base cool-off
  });

  it('a later, shorter cool-off never shortens a running one', () => {
    const s = new MirrorStats('http://a');
    s.failure(corrupt, 0); // 120 s
    const until = s.demotedUntil;
    s.failure(down, 1); // 60 s from t=1 (second in a row)
    expect(s.demotedUntil).toBe(until);
  });

  it('not-found answers are counted but neither fail nor demote', () => {
    const s = new MirrorStats('http://a');
    s.notFound();
    s.notFound();
    expect(s).toMatchObject({ requests: 2, notFoundCount: 2, failures: 0, failureRate: 0, demotedUntil: 0 });
    expect(s.snapshot(0)).toMatchObject({ notFound: 2, errors: 0, state: 'ok' });
  });

  it('snapshots are plain JSON', () => {
    const s = new MirrorStats('http://a');
    s.success(1.2345, 10);
    s.failure(down, 0);
    const snap = s.snapshot(0);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
    expect(snap.latencyMs).toBe(1.2);
  });
});
