import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLogger } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import type { DiscoveredMirrors } from '../src/mirrors/discover.js';
import { DnsMirrorList } from '../src/mirrors/dns-mirror-list.js';

/** A scripted discover(): each call takes the next answer (an Error is thrown). */
function scripted(answers: (DiscoveredMirrors | Error)[]) {
  let i = 0;
  return async () => {
    const a = answers[Math.min(i++, answers.length - 1)] as DiscoveredMirrors | Error;
    if (a instanceof Error) throw a;
    return a;
  };
}
const found = (urls: string[], ttlSeconds = 1): DiscoveredMirrors => ({ urls, ttlSeconds, via: 'SRV' });
const until = async (what: () => boolean, ms = 5_000) => {
  for (const end = Date.now() + ms; Date.now() < end && !what(); ) await sleep(10);
  return what();
};

describe('DnsMirrorList', () => {
  it('start() resolves once and starts no timer; follow() re-resolves when the TTL runs out', async () => {
    const discover = scripted([found(['http://a/', 'http://b/']), found(['http://b/', 'http://a/'])]);
    const logger = new MemoryLogger();
    const list = new DnsMirrorList({ logger, discover }, { pool: 'pool.test' });
    expect(await list.start()).toEqual(['http://a/', 'http://b/']);
    await sleep(1_100);
    expect(list.resolutions).toBe(1);
    const changes: (readonly string[])[] = [];
    list.onChange((u) => changes.push(u));
    const started = Date.now();
    list.follow();
    expect(await until(() => changes.length === 1)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(changes[0]).toEqual(['http://b/', 'http://a/']);
    expect(list.urls).toEqual(['http://b/', 'http://a/']);
    expect(logger.lines.join('\n')).toMatch(
      /pool pool\.test: mirrors now http:\/\/b\/ http:\/\/a\/ \(were http:\/\/a\/ http:\/\/b\/\)/,
    );
    list.close();
  });

  it('the same order again is not a change', async () => {
    const list = new DnsMirrorList({ discover: scripted([found(['http://a/'])]) }, { pool: 'p' });
    await list.start();
    let changes = 0;
    list.onChange(() => changes++);
    list.follow();
    await until(() => list.resolutions >= 2);
    expect(changes).toBe(0);
    list.close();
  });

  it('a failed re-resolution keeps the list, is logged, and is retried after retryMs', async () => {
    const logger = new MemoryLogger();
    const list = new DnsMirrorList(
      { logger, discover: scripted([found(['http://a/']), new Error('ETIMEOUT'), found(['http://c/'])]) },
      { pool: 'p', retryMs: 1_000 },
    );
    await list.start();
    const changes: (readonly string[])[] = [];
    list.onChange((u) => changes.push(u));
    list.follow();
    expect(await until(() => list.resolutions === 2)).toBe(true);
    await sleep(20);
    expect(list.urls).toEqual(['http://a/']);
    expect(
      logger.lines.some((l) => /re-resolving failed: ETIMEOUT; keeping 1 mirror\(s\), retrying in 1000 ms/.test(l)),
    ).toBe(true);
    expect(await until(() => changes.length === 1)).toBe(true);
    expect(list.urls).toEqual(['http://c/']);
    list.close();
  });

  it('the first resolution failing is the caller’s error; close() and abort stop following', async () => {
    await expect(
      new DnsMirrorList({ discover: scripted([new Error('no pool')]) }, { pool: 'p' }).start(),
    ).rejects.toThrow('no pool');
    const list = new DnsMirrorList({ discover: scripted([found(['http://a/'])]) }, { pool: 'p' });
    await list.start();
    const c = new AbortController();
    list.follow(c.signal);
    c.abort();
    await sleep(1_200);
    expect(list.resolutions).toBe(1);
    list.close();
  });
});
