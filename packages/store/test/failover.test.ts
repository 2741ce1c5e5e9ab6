import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSink,
  type BlockSource,
  MirrorUnavailableError,
  type SourceOptions,
} from '@thfc/format';
import { blockSourceContract, FakeSource } from '@thfc/format/testing';
import {
  DEFAULT_COOL_OFF_MS,
  defaultRounds,
  Failover,
  type FailoverMirror,
  type FailoverOptions,
  HEDGE_MIN_MS,
  HttpSource,
  MAX_STALL_ROUNDS,
  MemoryLogger,
  MIN_ATTEMPTS,
  MirrorStats,
  Urgency,
  verified,
} from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { type BlockServer, delay, type Fault, makeBlock, startBlockServer } from './block-server.js';

/** Failover over two fakes; put() fills only the second, so every get first meets a not-found. */
class FailoverOfFakes extends Failover implements BlockSink {
  constructor(readonly fakes: [FakeSource, FakeSource]) {
    super({ mirrors: fakes.map((source) => ({ source, stats: new MirrorStats(source.toString()) })) });
  }
  put(ref: BlockRef, stored: Uint8Array, options?: SourceOptions): Promise<void> {
    return this.fakes[1].put(ref, stored, options);
  }
}

blockSourceContract('Failover', async () => new FailoverOfFakes([new FakeSource('a'), new FakeSource('b')]), {
  describe,
  it,
  expect,
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Fleet {
  servers: BlockServer[];
  stats: MirrorStats[];
  mirrors: FailoverMirror[];
  failover: Failover;
  logger: MemoryLogger;
  clock: { now: number };
}

/** `n` real mirrors, each verified(http(...)), under one Failover with an injectable clock. */
async function fleet(n: number, options: FailoverOptions = {}, httpTimeoutMs?: number): Promise<Fleet> {
  const servers: BlockServer[] = [];
  const stats: MirrorStats[] = [];
  const mirrors: FailoverMirror[] = [];
  for (let i = 0; i < n; i++) {
    const server = await startBlockServer();
    const http = new HttpSource({}, { baseUrl: server.url, timeoutMs: httpTimeoutMs });
    cleanups.push(
      () => server.close(),
      () => http.close(),
    );
    servers.push(server);
    const s = new MirrorStats(server.url);
    stats.push(s);
    mirrors.push({ source: verified(http), stats: s });
  }
  const logger = new MemoryLogger();
  const clock = { now: 1_000_000 };
  const failover = new Failover({ mirrors, logger, now: () => clock.now }, options);
  return { servers, stats, mirrors, failover, logger, clock };
}

function serveEverywhere(f: Fleet, seed: number): { ref: BlockRef; stored: Uint8Array } {
  const block = makeBlock(seed);
  for (const server of f.servers) server.blocks.set(block.ref.id, block.stored);
  return block;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

describe('Failover', () => {
  const faults: [string, Fault | 'refused', RegExp, typeof MirrorUnavailableError | typeof BlockCorruptError][] = [
    ['HTTP 500', { kind: 'status', status: 500 }, /HTTP 500/, MirrorUnavailableError],
    ['HTTP 503', { kind: 'status', status: 503 }, /HTTP 503/, MirrorUnavailableError],
    ['a delay past the timeout', { kind: 'delay', ms: 5_000 }, /timeout after 300 ms/, MirrorUnavailableError],
    ['a reset mid-body', { kind: 'reset' }, /unavailable/, MirrorUnavailableError],
    ['a refused connection', 'refused', /ECONNREFUSED/, MirrorUnavailableError],
    ['a short body', { kind: 'short' }, /short body/, BlockCorruptError],
    ['a too-long body', { kind: 'long' }, /long body/, BlockCorruptError],
    ['a corrupt body', { kind: 'corrupt' }, /corrupt/, BlockCorruptError],
  ];
  it.each(faults)('fails over to the second mirror on %s', async (_, fault, reason, errorType) => {
    const f = await fleet(2, { timeoutMs: 300 });
    const { ref, stored } = serveEverywhere(f, 1);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    if (fault === 'refused') await a.close();
    else a.fault = () => fault;

    const got = await f.failover.get(ref);

    expect(sameBytes(got, stored)).toBe(true);
    expect(b.requests.map((r) => r.id)).toEqual([ref.id]);
    expect(f.stats[0]).toMatchObject({ failures: 1, successes: 0 });
    expect(f.stats[0]?.lastError).toMatch(reason);
    expect(f.stats[0]?.isDemoted(f.clock.now)).toBe(true);
    expect(f.stats[1]).toMatchObject({ failures: 0, successes: 1, bytes: stored.length });
    const faultLines = f.logger.lines.filter((l) => l.startsWith('FAULT'));
    expect(faultLines).toHaveLength(1);
    expect(faultLines[0]).toMatch(new RegExp(`^FAULT mirror ${a.url} failed block ${ref.id}: .*; trying ${b.url}$`));
    expect(faultLines[0]).toMatch(reason);
    // The error type decided the weight: bad bytes sit out longer than a failure to answer.
    const coolOff = (f.stats[0]?.demotedUntil ?? 0) - f.clock.now;
    expect(coolOff).toBe(errorType === BlockCorruptError ? 4 * DEFAULT_COOL_OFF_MS : DEFAULT_COOL_OFF_MS);
  });

  it('logs a successful fetch as one verbose line', async () => {
    const f = await fleet(2);
    const { ref, stored } = serveEverywhere(f, 2);
    await f.failover.get(ref);
    expect(f.logger.lines).toEqual([`FETCH block ${ref.id} from ${f.servers[0]?.url}: ${stored.length} bytes in 0 ms`]);
  });

  it('finds a block the first mirror lacks on the second, without demoting the first', async () => {
    const f = await fleet(2);
    const { ref, stored } = makeBlock(3);
    f.servers[1]?.blocks.set(ref.id, stored);
    expect(sameBytes(await f.failover.get(ref), stored)).toBe(true);
    expect(f.stats[0]).toMatchObject({ notFoundCount: 1, failures: 0 });
    expect(f.stats[0]?.isDemoted(f.clock.now)).toBe(false);
    expect(f.logger.lines[0]).toMatch(/^FAULT mirror .* failed block .*: block .* not found in .*; trying /);
  });

  it('is BlockNotFoundError when every mirror answers not-found, asking each once', async () => {
    const f = await fleet(3, { retries: 3 });
    const { ref } = makeBlock(4);
    const t0 = performance.now();
    const e = await f.failover.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockNotFoundError);
    expect((e as Error).message).toContain('failover(');
    expect(f.servers.map((s) => s.requests.length)).toEqual([1, 1, 1]);
    expect(performance.now() - t0).toBeLessThan(90); // no backoff pause either
    expect(f.logger.lines.at(-1)).toMatch(/; giving up$/);
  });

  it('all mirrors down: MirrorUnavailableError within timeout × retries × mirrors + backoff', async () => {
    const f = await fleet(2, { timeoutMs: 150, retries: 2 });
    const { ref } = serveEverywhere(f, 5);
    for (const s of f.servers) s.fault = () => ({ kind: 'delay', ms: 10_000 });
    const t0 = performance.now();
    const e = await f.failover.get(ref).catch((e: unknown) => e);
    const elapsed = performance.now() - t0;
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toMatch(/2 of 2 mirrors failed after 2 round\(s\)/);
    expect((e as Error).message.match(/timeout after 150 ms/g)).toHaveLength(2);
    expect(f.servers.map((s) => s.requests.length)).toEqual([2, 2]);
    const bound = 150 * 2 * 2 + 100;
    expect(elapsed).toBeGreaterThanOrEqual(bound * 0.9);
    expect(elapsed).toBeLessThan(bound + 600);
    const lines = f.logger.lines;
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/; retrying in 100 ms$/);
    expect(lines[3]).toMatch(/; giving up$/);
  });

  it('all mirrors refusing: MirrorUnavailableError at once, each mirror named', async () => {
    const f = await fleet(2, { retries: 2 });
    const { ref } = serveEverywhere(f, 6);
    for (const s of f.servers) await s.close();
    const t0 = performance.now();
    const e = await f.failover.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    for (const s of f.servers) expect((e as Error).message).toContain(`http(${s.url})`);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  it('a mix of not-found and failures is MirrorUnavailableError, and only failed mirrors are retried', async () => {
    const f = await fleet(2, { retries: 3 });
    const { ref, stored } = makeBlock(7);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    b.blocks.set(ref.id, stored);
    b.fault = () => ({ kind: 'status', status: 503 });
    await expect(f.failover.get(ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
    expect(a.requests.length).toBe(1);
    expect(b.requests.length).toBe(3);
  });

  it('a second round can succeed after a blip', async () => {
    const f = await fleet(1, { retries: 2 });
    const { ref, stored } = serveEverywhere(f, 8);
    const [a] = f.servers as [BlockServer];
    a.fault = (r) => (a.requests.indexOf(r) === 0 ? { kind: 'status', status: 503 } : undefined);
    expect(sameBytes(await f.failover.get(ref), stored)).toBe(true);
    expect(a.requests.length).toBe(2);
  });

  it('by default a single mirror gets three attempts, two mirrors two rounds (defaultRounds)', async () => {
    expect([1, 2, 3, 5].map(defaultRounds)).toEqual([3, 2, 2, 2]);
    const f = await fleet(1);
    const { ref, stored } = serveEverywhere(f, 12);
    const [a] = f.servers as [BlockServer];
    a.fault = (r) => (a.requests.indexOf(r) < 2 ? { kind: 'status', status: 503 } : undefined);
    expect(sameBytes(await f.failover.get(ref), stored)).toBe(true);
    expect(a.requests.length).toBe(3);
    a.fault = () => ({ kind: 'status', status: 503 });
    const other = serveEverywhere(f, 13);
    await expect(f.failover.get(other.ref)).rejects.toThrow(/after 3 round\(s\)/);
    expect(a.requests.length).toBe(6);
  });

  it('a mirror serving corrupt bytes is demoted and asked last on the next request', async () => {
    const f = await fleet(2);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    a.fault = () => ({ kind: 'corrupt' });
    const first = serveEverywhere(f, 9);
    await f.failover.get(first.ref);
    expect(f.failover.mirrorSnapshots().map((s) => s.state)).toEqual(['demoted', 'ok']);

    const second = serveEverywhere(f, 10);
    const aBefore = a.requests.length;
    expect(sameBytes(await f.failover.get(second.ref), second.stored)).toBe(true);
    expect(a.requests.length).toBe(aBefore); // never reached: b answered first
    expect(b.requests.at(-1)?.id).toBe(second.ref.id);

    // Still the last resort: when b fails too, a is asked.
    b.fault = () => ({ kind: 'status', status: 503 });
    a.fault = undefined;
    const third = serveEverywhere(f, 11);
    expect(sameBytes(await f.failover.get(third.ref), third.stored)).toBe(true);
    expect(a.requests.at(-1)?.id).toBe(third.ref.id);
  });

  it('a demoted mirror is asked first again once its cool-off has passed', async () => {
    const f = await fleet(2);
    const [a] = f.servers as [BlockServer, BlockServer];
    a.fault = () => ({ kind: 'status', status: 503 });
    await f.failover.get(serveEverywhere(f, 12).ref);
    a.fault = undefined;

    f.clock.now += DEFAULT_COOL_OFF_MS - 1;
    const during = serveEverywhere(f, 13);
    await f.failover.get(during.ref);
    expect(a.requests.map((r) => r.id)).not.toContain(during.ref.id);

    f.clock.now += 1;
    expect(f.failover.mirrorSnapshots()[0]?.state).toBe('ok');
    const after = serveEverywhere(f, 14);
    await f.failover.get(after.ref);
    expect(a.requests.at(-1)?.id).toBe(after.ref.id);
    expect(f.stats[0]?.successes).toBe(1);
  });

  it('an abort rejects promptly with the reason and records nothing', async () => {
    const f = await fleet(2, { timeoutMs: 5_000 });
    const { ref } = serveEverywhere(f, 15);
    for (const s of f.servers) s.fault = () => ({ kind: 'delay', ms: 5_000 });
    const ac = new AbortController();
    const reason = new Error('unmount');
    setTimeout(() => ac.abort(reason), 50);
    const t0 = performance.now();
    await expect(f.failover.get(ref, { signal: ac.signal })).rejects.toBe(reason);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(f.stats.map((s) => s.requests)).toEqual([0, 0]);
    expect(f.servers[1]?.requests.length).toBe(0);
    expect(f.logger.lines).toEqual([]);
  });

  it('an abort during the pause between rounds rejects with the reason', async () => {
    const f = await fleet(1, { retries: 5 });
    const { ref } = serveEverywhere(f, 16);
    const [a] = f.servers as [BlockServer];
    a.fault = () => ({ kind: 'status', status: 503 });
    const ac = new AbortController();
    const reason = new Error('stop');
    // Round 1 fails at once; rounds 2–5 would add 100 + 200 + 400 + 800 ms of pauses.
    setTimeout(() => ac.abort(reason), 150);
    const t0 = performance.now();
    await expect(f.failover.get(ref, { signal: ac.signal })).rejects.toBe(reason);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('passes an error that is none of the three seam errors straight on', async () => {
    const a = new FakeSource('a');
    const b = new FakeSource('b');
    const { ref, stored } = makeBlock(17);
    b.blocks.set(ref.id, stored);
    const bug = new TypeError('a bug');
    a.onGet = () => {
      throw bug;
    };
    const failover = new Failover({
      mirrors: [a, b].map((source) => ({ source, stats: new MirrorStats(source.toString()) })),
    });
    await expect(failover.get(ref)).rejects.toBe(bug);
    expect(b.calls).toEqual([]);
  });

  it('passes the priority to the mirrors', async () => {
    const seen: (string | undefined)[] = [];
    const fake = new FakeSource('a');
    const { ref, stored } = makeBlock(18);
    fake.blocks.set(ref.id, stored);
    const spy: BlockSource = {
      get: (r, o) => {
        seen.push(o?.priority);
        return fake.get(r, o);
      },
      has: (r, o) => fake.has(r, o),
      toString: () => 'spy',
    };
    const failover = new Failover({ mirrors: [{ source: spy, stats: new MirrorStats('spy') }] });
    await failover.get(ref, { priority: 'background' });
    await failover.get(ref);
    expect(seen).toEqual(['background', undefined]);
  });

  it('has() asks mirrors in rank order until one holds the block', async () => {
    const f = await fleet(3);
    const { ref, stored } = makeBlock(19);
    const [a, b, c] = f.servers as [BlockServer, BlockServer, BlockServer];
    b.blocks.set(ref.id, stored);
    c.blocks.set(ref.id, stored);
    expect(await f.failover.has(ref)).toBe(true);
    expect([a, b, c].map((s) => s.requests.map((r) => r.method))).toEqual([['HEAD'], ['HEAD'], []]);
    expect(await f.failover.has(makeBlock(20).ref)).toBe(false);
    for (const s of [a, b, c]) s.fault = () => ({ kind: 'status', status: 503 });
    await expect(f.failover.has(ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
    expect(f.stats.map((s) => s.requests)).toEqual([0, 0, 0]);
  });

  it('prints its topology and snapshots every mirror in starting order', async () => {
    const f = await fleet(2);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    expect(f.failover.toString()).toBe(`failover(verified(http(${a.url})), verified(http(${b.url})))`);
    a.fault = () => ({ kind: 'status', status: 503 });
    const { stored, ref } = serveEverywhere(f, 21);
    await f.failover.get(ref);
    expect(f.failover.mirrorSnapshots()).toEqual([
      {
        url: a.url,
        state: 'demoted',
        latencyMs: null,
        requests: 1,
        errors: 1,
        notFound: 0,
        bytes: 0,
        lastError: `http(${a.url}) unavailable: HTTP 503`,
        window: null,
      },
      {
        url: b.url,
        state: 'ok',
        latencyMs: 0,
        requests: 1,
        errors: 0,
        notFound: 0,
        bytes: stored.length,
        lastError: null,
        window: null,
      },
    ]);
  });

  it('ranks by measured latency once mirrors have enough samples', async () => {
    const f = await fleet(2);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    // Seed the records as if b had proved faster.
    for (let i = 0; i < 3; i++) {
      f.stats[0]?.success(50, 1);
      f.stats[1]?.success(5, 1);
    }
    const { ref } = serveEverywhere(f, 22);
    await f.failover.get(ref);
    expect(a.requests.length).toBe(0);
    expect(b.requests.length).toBe(1);
  });
});

describe('Failover and stalled transfers (the low-speed limit)', () => {
  async function stallingMirror(): Promise<{ server: BlockServer; failover: Failover }> {
    const server = await startBlockServer();
    const http = new HttpSource({}, { baseUrl: server.url, lowSpeedBps: 1024, lowSpeedTimeMs: 100 });
    cleanups.push(
      () => server.close(),
      () => http.close(),
    );
    const failover = new Failover(
      { mirrors: [{ source: verified(http), stats: new MirrorStats(server.url), timesItself: true }] },
      { hedge: false },
    );
    return { server, failover };
  }

  it('a block whose first attempts all drip gets extra rounds for the stalls, and arrives', async () => {
    const { server, failover } = await stallingMirror();
    const { ref, stored } = makeBlock(600);
    server.blocks.set(ref.id, stored);
    let n = 0;
    server.fault = () => (++n <= MIN_ATTEMPTS + 1 ? { kind: 'drip', everyMs: 100 } : undefined); // more than 3
    expect(sameBytes(await failover.get(ref), stored)).toBe(true);
    expect(n).toBe(MIN_ATTEMPTS + 2);
  });

  it('a mirror that drips every time fails the block after its rounds plus MAX_STALL_ROUNDS', async () => {
    const { server, failover } = await stallingMirror();
    const { ref, stored } = makeBlock(601);
    server.blocks.set(ref.id, stored);
    let n = 0;
    server.fault = () => {
      n++;
      return { kind: 'drip', everyMs: 100 };
    };
    await expect(failover.get(ref)).rejects.toThrow(/too slow/);
    expect(n).toBe(MIN_ATTEMPTS + MAX_STALL_ROUNDS);
  });
});

describe('Failover timing with a wall clock', () => {
  it('records real latency samples', async () => {
    const server = await startBlockServer();
    const http = new HttpSource({}, { baseUrl: server.url });
    cleanups.push(
      () => server.close(),
      () => http.close(),
    );
    const stats = new MirrorStats(server.url);
    const failover = new Failover({ mirrors: [{ source: verified(http), stats }] });
    const { ref, stored } = makeBlock(30);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'delay', ms: 60 });
    await failover.get(ref);
    expect(stats.latencyMs).toBeGreaterThanOrEqual(55);
    await delay(0);
  });
});

describe('Failover.setMirrors (a pool re-resolved by DNS)', () => {
  it('the new starting order is used from the next get; known mirrors keep their records; a dropped mirror is not asked', async () => {
    const f = await fleet(3);
    const [a, b, c] = f.servers as [BlockServer, BlockServer, BlockServer];
    const [ma, mb, mc] = f.mirrors as [FailoverMirror, FailoverMirror, FailoverMirror];
    const first = serveEverywhere(f, 40);
    await f.failover.get(first.ref);
    expect(a.requests).toHaveLength(1);

    f.failover.setMirrors([mc, mb]);
    const second = serveEverywhere(f, 41);
    await f.failover.get(second.ref);
    expect(c.requests.map((r) => r.id)).toEqual([second.ref.id]);
    expect(a.requests).toHaveLength(1);
    expect(f.failover.mirrorSnapshots().map((s) => s.url)).toEqual([c.url, b.url]);
    expect(ma.stats.successes).toBe(1); // kept by the caller, ready if the mirror comes back

    c.fault = () => ({ kind: 'status', status: 503 });
    const third = serveEverywhere(f, 42);
    await f.failover.get(third.ref);
    expect(b.requests.map((r) => r.id)).toEqual([third.ref.id]);
    expect(() => f.failover.setMirrors([])).toThrow(/at least one mirror/);
  });
});

describe('Failover hedged requests', () => {
  /** Mirrors with a few quick fetches behind them, so their typical latency is known (a few ms on loopback). */
  async function warmFleet(n: number, options: FailoverOptions = {}) {
    const f = await fleet(n, options);
    f.failover = new Failover({ mirrors: f.mirrors, logger: f.logger }, options); // a wall clock: hedges are timed
    for (let i = 0; i < 4; i++) {
      for (const m of f.mirrors) {
        const { ref } = serveEverywhere(f, 500 + i);
        await new Failover({ mirrors: [m] }).get(ref);
      }
    }
    return f;
  }

  it('a slow demand fetch gets a second request on the next mirror after HEDGE_MIN_MS; the first answer wins', async () => {
    const f = await warmFleet(2);
    const { ref, stored } = serveEverywhere(f, 520);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    a.fault = () => ({ kind: 'delay', ms: 5_000 });
    (f.stats[1] as MirrorStats).latencyMs = ((f.stats[0] as MirrorStats).latencyMs ?? 0) + 1; // a ranks first
    const t0 = performance.now();
    const got = await f.failover.get(ref);
    const elapsed = performance.now() - t0;
    expect(sameBytes(got, stored)).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(HEDGE_MIN_MS * 0.9);
    expect(elapsed).toBeLessThan(HEDGE_MIN_MS + 1_000); // not the 5 s of the slow mirror, nor its deadline
    expect(b.requests.filter((r) => r.id === ref.id)).toHaveLength(1);
    expect(f.failover.hedges).toBe(1);
    expect(f.failover.hedgesWon).toBe(1);
    // The loser was aborted, not failed: the slow mirror is not demoted for it.
    expect(f.stats[0]?.failures).toBe(0);
    await delay(50);
    expect(a.active).toBe(0);
  });

  it('one mirror: the hedge goes to the same mirror on another connection', async () => {
    const f = await warmFleet(1);
    const { ref, stored } = serveEverywhere(f, 530);
    const [a] = f.servers as [BlockServer];
    let first = true;
    a.fault = (r) => {
      if (r.id !== ref.id || !first) return undefined;
      first = false;
      return { kind: 'delay', ms: 5_000 };
    };
    const got = await f.failover.get(ref);
    expect(sameBytes(got, stored)).toBe(true);
    expect(a.requests.filter((r) => r.id === ref.id)).toHaveLength(2);
    expect(f.failover.hedgesWon).toBe(1);
  });

  /** One real mirror that times itself (as httpstorged builds it), with `connections` slots and a latency known. */
  async function timedMirror(connections: number) {
    const server = await startBlockServer();
    const http = new HttpSource({}, { baseUrl: server.url, connections });
    cleanups.push(
      () => server.close(),
      () => http.close(),
    );
    const stats = new MirrorStats(server.url);
    stats.latencyMs = 5; // a hedge is due HEDGE_MIN_MS after its clock starts
    return { server, failover: new Failover({ mirrors: [{ source: verified(http), stats, timesItself: true }] }) };
  }

  it('one mirror: a demand fetch queued behind its own window is not hedged there while it waits', async () => {
    const { server, failover } = await timedMirror(1);
    const slow = makeBlock(548);
    const queued = makeBlock(549);
    for (const { ref, stored } of [slow, queued]) server.blocks.set(ref.id, stored);
    server.fault = (r) => (r.id === slow.ref.id ? { kind: 'delay', ms: 10 * HEDGE_MIN_MS } : undefined);
    const first = failover.get(slow.ref, { priority: 'background' }); // holds the only slot, never hedged
    await delay(20);
    const got = failover.get(queued.ref); // a reader waits 10 × HEDGE_MIN_MS in the queue
    await delay(3 * HEDGE_MIN_MS);
    // Timed from the wait, it was hedged after HEDGE_MIN_MS, into the same queue.
    expect(failover.hedges).toBe(0);
    expect(sameBytes(await got, queued.stored)).toBe(true);
    await first;
  });

  it('one mirror that times itself: the hedge clock starts when the request is sent, and the hedge is sent', async () => {
    const { server, failover } = await timedMirror(2);
    const { ref, stored } = makeBlock(547);
    server.blocks.set(ref.id, stored);
    let first = true;
    server.fault = (r) => {
      if (r.id !== ref.id || !first) return undefined;
      first = false;
      return { kind: 'delay', ms: 5_000 };
    };
    const t0 = performance.now();
    const got = await failover.get(ref);
    expect(sameBytes(got, stored)).toBe(true);
    expect(failover.hedgesWon).toBe(1);
    expect(performance.now() - t0).toBeLessThan(2_000); // not the 5 s of the first request
  });

  it('background fetches are not hedged until a reader waits on them; one out longer than the hedge delay is hedged at once then', async () => {
    const f = await warmFleet(2);
    const { ref } = serveEverywhere(f, 540);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    a.fault = () => ({ kind: 'delay', ms: 1_000 });
    (f.stats[1] as MirrorStats).latencyMs = ((f.stats[0] as MirrorStats).latencyMs ?? 0) + 1; // a ranks first
    const urgency = new Urgency('background');
    const t0 = performance.now();
    const got = f.failover.get(ref, { priority: 'background', urgency });
    await delay(400);
    expect(b.requests.filter((r) => r.id === ref.id)).toHaveLength(0); // 2 × HEDGE_MIN_MS and still no hedge
    urgency.raise();
    await got;
    const elapsed = performance.now() - t0;
    expect(b.requests.filter((r) => r.id === ref.id)).toHaveLength(1);
    // On the wire for 400 ms when the reader came: already in the tail, so the reader waits no hedge delay more
    // (a dripped read-ahead block used to cost every reader that reached it a whole HEDGE_MIN_MS in turn).
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(400 + HEDGE_MIN_MS * 0.5);
  });

  it('a slow but steady answer is not hedged: the clock runs from its last bytes (issue 12, T6)', async () => {
    const f = await warmFleet(2);
    const { ref, stored } = serveEverywhere(f, 545);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    // 20 pieces, one every 10 ms: ~200 ms in all, twice HEDGE_MIN_MS, and never a gap near it.
    a.fault = () => ({ kind: 'steady', pieces: 20, everyMs: 10 });
    (f.stats[1] as MirrorStats).latencyMs = ((f.stats[0] as MirrorStats).latencyMs ?? 0) + 1; // a ranks first
    const t0 = performance.now();
    const got = await f.failover.get(ref);
    expect(sameBytes(got, stored)).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(HEDGE_MIN_MS * 1.5);
    expect(b.requests.filter((r) => r.id === ref.id)).toHaveLength(0);
    expect(f.failover.hedges).toBe(0);
  });

  it('an answer whose body stalls past the hedge delay is hedged, timed from its last bytes', async () => {
    const f = await warmFleet(2);
    const { ref, stored } = serveEverywhere(f, 546);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    a.fault = () => ({ kind: 'steady', pieces: 20, everyMs: 10, stallMs: 5_000 });
    (f.stats[1] as MirrorStats).latencyMs = ((f.stats[0] as MirrorStats).latencyMs ?? 0) + 1; // a ranks first
    const t0 = performance.now();
    const got = await f.failover.get(ref);
    const elapsed = performance.now() - t0;
    expect(sameBytes(got, stored)).toBe(true);
    expect(b.requests.filter((r) => r.id === ref.id)).toHaveLength(1);
    expect(f.failover.hedgesWon).toBe(1);
    // Half the body (~100 ms), then HEDGE_MIN_MS of silence: hedged from the last bytes, not from the start.
    expect(elapsed).toBeGreaterThanOrEqual(HEDGE_MIN_MS * 1.5);
    expect(elapsed).toBeLessThan(2_000);
  });

  /** One real mirror as httpstorged builds it (it times itself), fresh: no latency known yet. */
  async function oneMirror(options: FailoverOptions = {}, connections?: number) {
    const server = await startBlockServer();
    const http = new HttpSource({}, { baseUrl: server.url, connections }); // the default low-speed limit: 1 KiB/s over 2 s
    cleanups.push(
      () => server.close(),
      () => http.close(),
    );
    const mirror: FailoverMirror = { source: verified(http), stats: new MirrorStats(server.url), timesItself: true };
    const logger = new MemoryLogger();
    return { server, logger, failover: new Failover({ mirrors: [mirror], logger }, options) };
  }

  it('a dripping read-ahead is hedged by itself, before a reader waits on it and before any latency is known', async () => {
    const { server, failover } = await oneMirror();
    const { ref, stored } = makeBlock(560);
    server.blocks.set(ref.id, stored);
    let n = 0;
    server.fault = () => (++n === 1 ? { kind: 'drip', everyMs: 100 } : undefined);
    const t0 = performance.now();
    const got = await failover.get(ref, { priority: 'background', urgency: new Urgency('background') });
    const elapsed = performance.now() - t0;
    expect(sameBytes(got, stored)).toBe(true);
    expect(failover.hedges).toBe(1);
    expect(failover.hedgesWon).toBe(1);
    expect(elapsed).toBeLessThan(1_000); // not the low-speed limit's 2 s, then a retry
  });

  it('10 % of responses dripped: a sequential read costs each dripped block about a round trip; a clean read hedges nothing', async () => {
    const { server, failover, logger } = await oneMirror();
    const blocks = Array.from({ length: 40 }, (_, i) => makeBlock(570 + i));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    const read = async () => {
      const t0 = performance.now();
      for (const { ref, stored } of blocks) expect(sameBytes(await failover.get(ref), stored)).toBe(true);
      return performance.now() - t0;
    };
    await read();
    const clean = await read();
    // No response drips, so none is hedged for it (a busy machine may still hedge a slow one by the clock).
    expect(logger.lines.filter((l) => l.includes('dripping answer'))).toEqual([]);
    expect(server.requests).toHaveLength(80 + failover.hedges);

    // Every tenth block's first request drips, the first block's included (sent before any latency was known).
    const dripped = new Set(blocks.filter((_, i) => i % 10 === 0).map((b) => b.ref.id));
    const { server: fresh, failover: cold } = await oneMirror();
    for (const { ref, stored } of blocks) fresh.blocks.set(ref.id, stored);
    fresh.fault = (r) => (r.id && dripped.delete(r.id) ? { kind: 'drip', everyMs: 100 } : undefined);
    const t0 = performance.now();
    for (const { ref, stored } of blocks) expect(sameBytes(await cold.get(ref), stored)).toBe(true);
    const extra = performance.now() - t0 - clean;
    expect(cold.hedges).toBe(4);
    expect(fresh.requests).toHaveLength(44);
    // ~50 ms to see the drip plus a round trip, each; the old hedge rule cost the first 2 s and the others 100 ms.
    expect(extra / 4).toBeLessThan(150);
  });

  it('a mirror that drips every response gets hedges only as the budget allows, not one per block', async () => {
    const { server, failover } = await oneMirror({}, 64); // room for every request and its hedge at once
    const blocks = Array.from({ length: 30 }, (_, i) => makeBlock(620 + i));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'drip', everyMs: 100 });
    const controllers = blocks.map(() => new AbortController());
    const gets = blocks.map((b, i) => failover.get(b.ref, { signal: controllers[i]?.signal }).catch(() => {}));
    await delay(500); // every request has dripped long enough to be seen, none for the low-speed time
    for (const c of controllers) c.abort();
    await Promise.all(gets);
    // A burst of 10, then one per five attempts: 30 attempts earn 6 more, and each hedge earns a fifth.
    expect(failover.hedges).toBeGreaterThanOrEqual(10);
    expect(failover.hedges).toBeLessThanOrEqual(10 + Math.ceil(0.2 * server.requests.length));
    expect(failover.hedges).toBeLessThan(blocks.length);
  });

  it('hedge: false sends none', async () => {
    const f = await warmFleet(2, { hedge: false });
    const { ref } = serveEverywhere(f, 550);
    const [a, b] = f.servers as [BlockServer, BlockServer];
    a.fault = () => ({ kind: 'delay', ms: 500 });
    (f.stats[1] as MirrorStats).latencyMs = ((f.stats[0] as MirrorStats).latencyMs ?? 0) + 1; // a ranks first
    await f.failover.get(ref);
    expect(b.requests.filter((r) => r.id === ref.id)).toHaveLength(0);
    expect(f.failover.hedges).toBe(0);
  });
});
