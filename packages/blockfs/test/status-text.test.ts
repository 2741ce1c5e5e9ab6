import { describe, expect, it } from 'vitest';
import type { ImageStatus, MountStatus } from '../src/mount.js';
import { formatStatus } from '../src/status-text.js';

function image(overrides: Partial<ImageStatus> = {}): ImageStatus {
  return {
    name: 'debian',
    index: 'http://mirror.example/imgs/debian.idx',
    indexFrom: 'network',
    digest: `sha256:${'ab'.repeat(32)}`,
    pinned: null,
    versionCheck: null,
    authenticated: true,
    signer: '0123456789abcdef',
    size: 512 * 1024 * 1024,
    blocks: 2048,
    zeroBlocks: 1000,
    uniqueBlocks: 1000,
    localBlocks: 250,
    localFraction: 0.25,
    blocksFetched: 200,
    bytesDownloaded: 20 * 1024 * 1024,
    cacheHits: 50,
    memoryHits: 7,
    reads: 300,
    bytesRead: 3 * 1024 * 1024,
    readErrors: 1,
    readaheadErrors: 2,
    readaheadIssued: 64,
    sources: 'memory(cached(...))',
    mirrors: [
      {
        url: 'http://a.example/imgs',
        state: 'ok',
        latencyMs: 12.345,
        requests: 150,
        errors: 0,
        notFound: 2,
        bytes: 1,
        lastError: null,
        window: {
          mode: 'steady',
          limit: 12,
          inFlight: 3,
          queued: 0,
          bytesInFlight: 270_000,
          rttMs: 51.25,
          goodputBps: 12 * 1024 * 1024,
        },
      },
      {
        url: 'http://b.example/imgs',
        state: 'demoted',
        latencyMs: null,
        requests: 3,
        errors: 3,
        notFound: 0,
        bytes: 0,
        lastError: 'http(http://b.example/imgs) unavailable: ECONNREFUSED',
        window: null,
      },
    ],
    hedges: 5,
    hedgesWon: 4,
    prefetch: null,
    fill: null,
    ...overrides,
  };
}

function status(overrides: Partial<MountStatus> = {}): MountStatus {
  return {
    mountpoint: '/mnt/images',
    pid: 4242,
    started: '2026-11-27T09:00:00.000Z',
    cache: {
      dir: '/var/tmp/blocks',
      bytes: 1536 * 1024,
      blocks: 12,
      maxBytes: 10 * 1024 ** 3,
      sealed: 10,
      checked: 2,
      changed: 1,
    },
    images: [image()],
    switch: null,
    ...overrides,
  };
}

describe('formatStatus', () => {
  it('says where a version switch stands, once there was one', () => {
    expect(formatStatus(status())).not.toContain('switch:');
    const waiting = {
      requests: 1,
      state: 'waiting' as const,
      from: {},
      to: {},
      message: null,
      at: '2026-12-06T10:00:00.000Z',
    };
    expect(formatStatus(status({ switch: waiting }))).toContain('switch: waiting (2026-12-06T10:00:00.000Z)');
  });

  it('one paragraph per image, one line per mirror, with the disk cache', () => {
    const text = formatStatus(status());
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('/mnt/images: daemon pid 4242 since 2026-11-27T09:00:00.000Z');
    expect(lines[1]).toBe(
      'cache /var/tmp/blocks: 12 blocks, 1.50 MiB of 10.0 GiB; 10 trusted by the seal, 2 hashed, 1 found changed',
    );
    expect(lines[2]).toBe('');
    expect(lines[3]).toBe('debian  512 MiB  http://mirror.example/imgs/debian.idx (index from network)');
    expect(lines[4]).toBe(`  version  sha256:${'ab'.repeat(32)}`);
    expect(formatStatus({ ...status(), images: [image({ pinned: `sha256:${'ab'.repeat(32)}` })] })).toContain(
      `  version  sha256:${'ab'.repeat(32)} (pinned)`,
    );
    const update = { digest: `sha256:${'cd'.repeat(32)}`, created: '2026-12-06T10:00:00Z', noticed: 'x' };
    expect(
      formatStatus({
        ...status(),
        images: [image({ versionCheck: { update, checked: 'x', lastError: null } })],
      }),
    ).toContain(`  update   newer version available: sha256:${'cd'.repeat(32)}, published 2026-12-06T10:00:00Z`);
    expect(lines).toContain('  blocks   2048 (1000 zero, 1000 unique); local 250/1000 (25.0%)');
    expect(lines).toContain('  fetched  200 blocks, 20.0 MiB; cache hits 50; memory hits 7');
    expect(lines).toContain('  reads    300 (3.00 MiB), 1 errors, 2 readahead errors; read-ahead 64 blocks');
    expect(lines).toContain('  hedges   5 sent, 4 answered first');
    expect(formatStatus({ ...status(), images: [image({ hedges: 0, hedgesWon: 0 })] })).not.toContain('hedges');
    const a = lines.indexOf('  mirror   http://a.example/imgs ok 12.3 ms, 150 requests, 0 errors, 2 not found');
    // Each HTTP mirror's request window: its size, its estimated round trip and its goodput.
    expect(lines[a + 1]).toBe('           window 12 (steady), 3 in flight, 0 queued; rtt 51.3 ms; goodput 12.0 MiB/s');
    const b = lines.indexOf(
      '  mirror   http://b.example/imgs demoted, 3 requests, 3 errors, 0 not found; last error: http(http://b.example/imgs) unavailable: ECONNREFUSED',
    );
    expect(a).toBeGreaterThan(3);
    expect(b).toBe(a + 2); // after a's window line; b is a local store or down: no window line
  });

  it('without a disk cache says RAM only; an uncapped cache shows no cap', () => {
    const none = { sealed: 0, checked: 0, changed: 0 };
    expect(
      formatStatus(status({ cache: { dir: null, bytes: 0, blocks: 0, maxBytes: null, ...none } })).split('\n')[1],
    ).toBe('cache: none (RAM only)');
    expect(
      formatStatus(status({ cache: { dir: '/c', bytes: 100, blocks: 1, maxBytes: null, ...none } })).split('\n')[1],
    ).toBe('cache /c: 1 blocks, 100 B; 0 trusted by the seal, 0 hashed, 0 found changed');
  });

  it('says whether each index is authenticated, and by which key', () => {
    const lines = (i: Partial<ImageStatus>) => formatStatus(status({ images: [image(i)] })).split('\n');
    expect(lines({})).toContain('  trust    authenticated: signed by 0123456789abcdef');
    expect(lines({ authenticated: false, signer: null })).toContain(
      '  trust    not authenticated (no --trust or --trust-store): whoever can change the index chooses the bytes',
    );
  });

  it('shows profile replay and --fill progress when they run, and nothing when they do not', () => {
    const p = { blocks: 40, fetched: 30, hit: 25, wasted: 5, pending: 10, failed: 0, done: false };
    const lines = formatStatus(
      status({
        images: [image({ prefetch: { ...p, source: 'debian.profile' }, fill: { ...p, failed: 2, done: true } })],
      }),
    ).split('\n');
    expect(lines).toContain(
      '  prefetch running: 30/40 blocks fetched, 10 pending; 25 used by readers, 5 not (yet); profile debian.profile',
    );
    expect(lines).toContain(
      '  fill     done: 30/40 blocks fetched, 10 pending, 2 failed; 25 used by readers, 5 not (yet)',
    );
    expect(formatStatus(status())).not.toMatch(/prefetch|fill/);
  });

  it('an offline image (index from the cache) lists no mirrors', () => {
    const text = formatStatus(status({ images: [image({ indexFrom: 'cache', mirrors: [] })] }));
    expect(text).toContain('(index from cache)');
    expect(text).not.toContain('  mirror   ');
  });

  it('several images each get their own paragraph, in order', () => {
    const text = formatStatus(
      status({
        images: [image(), image({ name: 'alpine', index: '/srv/alpine.idx', indexFrom: 'file', mirrors: [] })],
      }),
    );
    const paragraphs = text.trimEnd().split('\n\n');
    expect(paragraphs).toHaveLength(3);
    expect(paragraphs[1]?.startsWith('debian  ')).toBe(true);
    expect(paragraphs[2]?.startsWith('alpine  512 MiB  /srv/alpine.idx (index from file)')).toBe(true);
  });
});
