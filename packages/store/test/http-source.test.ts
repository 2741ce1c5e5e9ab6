import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSink,
  type BlockSource,
  InvalidArgumentError,
  MirrorUnavailableError,
  type SourceOptions,
} from '@thfc/format';
import { blockSourceContract } from '@thfc/format/testing';
import {
  HedgeLost,
  type HttpResult,
  HttpSource,
  MemoryLogger,
  retryAfterMs,
  STALLING_CHECK_MS,
  Urgency,
} from '@thfc/store';
import { Agent } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type BlockServer, delay, makeBlock, startBlockServer } from './block-server.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  options: Partial<ConstructorParameters<typeof HttpSource>[1]> = {},
  components: ConstructorParameters<typeof HttpSource>[0] = {},
): Promise<{ server: BlockServer; source: HttpSource }> {
  const server = await startBlockServer();
  const source = new HttpSource(components, { baseUrl: server.url, ...options });
  cleanups.push(
    () => server.close(),
    () => source.close(),
  );
  return { server, source };
}

/** The read-only HttpSource plus a put() that drops the block into the server's map, for the contract suite. */
class ServedHttpSource implements BlockSource, BlockSink {
  constructor(
    readonly server: BlockServer,
    readonly http: HttpSource,
  ) {}
  get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    return this.http.get(ref, options);
  }
  has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    return this.http.has(ref, options);
  }
  async put(ref: BlockRef, stored: Uint8Array): Promise<void> {
    if (!this.server.blocks.has(ref.id)) this.server.blocks.set(ref.id, stored);
  }
  toString(): string {
    return this.http.toString();
  }
}

const contractCleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of contractCleanups) await cleanup();
});
blockSourceContract(
  'HttpSource',
  async () => {
    const server = await startBlockServer();
    const http = new HttpSource({}, { baseUrl: server.url });
    contractCleanups.push(
      () => http.close(),
      () => server.close(),
    );
    return new ServedHttpSource(server, http);
  },
  { describe, it, expect },
);

describe('HttpSource', () => {
  it('GETs <base>/blocks/ab/<id> and returns the stored bytes exactly', async () => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(1);
    server.blocks.set(ref.id, stored);
    const got = await source.get(ref);
    expect(Buffer.from(got).equals(Buffer.from(stored))).toBe(true);
    expect(server.requests).toEqual([
      { method: 'GET', path: `/store/blocks/${ref.id.slice(0, 2)}/${ref.id}`, id: ref.id },
    ]);
  });

  it('prints its topology and ignores a trailing slash on the base URL', async () => {
    const server = await startBlockServer();
    cleanups.push(() => server.close());
    const source = new HttpSource({}, { baseUrl: `${server.url}/` });
    cleanups.push(() => source.close());
    expect(source.toString()).toBe(`http(${server.url})`);
    const { ref, stored } = makeBlock(2);
    server.blocks.set(ref.id, stored);
    expect((await source.get(ref)).length).toBe(stored.length);
  });

  it('rejects URLs that do not name an http(s) directory', () => {
    expect(() => new HttpSource({}, { baseUrl: 'ftp://x/store' })).toThrow(InvalidArgumentError);
    expect(() => new HttpSource({}, { baseUrl: 'not a url' })).toThrow(InvalidArgumentError);
    expect(() => new HttpSource({}, { baseUrl: 'http://x/store?y=1' })).toThrow(InvalidArgumentError);
    expect(() => new HttpSource({}, { baseUrl: 'http://x/', connections: 0 })).toThrow(InvalidArgumentError);
  });

  it.each([404, 410])('HTTP %i is BlockNotFoundError', async (status) => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(3);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'status', status });
    await expect(source.get(ref)).rejects.toBeInstanceOf(BlockNotFoundError);
  });

  it.each([500, 503, 403, 302])('HTTP %i is MirrorUnavailableError naming the mirror and status', async (status) => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(4);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'status', status });
    const e = await source.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toBe(`http(${server.url}) unavailable: HTTP ${status}`);
  });

  it('a mirror slower than the timeout is MirrorUnavailableError within about the timeout', async () => {
    const { server, source } = await setup({ timeoutMs: 200 });
    const { ref, stored } = makeBlock(5);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'delay', ms: 5_000 });
    const t0 = performance.now();
    const e = await source.get(ref).catch((e: unknown) => e);
    const elapsed = performance.now() - t0;
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toBe(`http(${server.url}) unavailable: timeout after 200 ms`);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1_500);
  });

  it('a connection reset mid-body is MirrorUnavailableError', async () => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(6);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'reset' });
    const e = await source.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toMatch(new RegExp(`^http\\(${server.url}\\) unavailable: `));
  });

  it('a refused connection is MirrorUnavailableError with the errno code', async () => {
    const { server, source } = await setup();
    await server.close();
    const e = await source.get(makeBlock(7).ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('a short body is BlockCorruptError', async () => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(8);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'short' });
    const e = await source.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as Error).message).toMatch(/short body/);
  });

  it('a long body is BlockCorruptError', async () => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(9);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'long' });
    const e = await source.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as Error).message).toMatch(/long body/);
  });

  it('stops reading an endless body just past storedSize and aborts the transfer', async () => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(10);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'endless' });
    const e = await source.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as Error).message).toMatch(/long body: more than/);
    await delay(100);
    // Had the client kept reading, the server would have pushed up to 1 GiB.
    expect(server.endlessBytes).toBeLessThan(64 << 20);
  });

  it('does not verify content: a same-length corrupt body is returned as is', async () => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(11);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'corrupt' });
    const got = await source.get(ref);
    expect(got.length).toBe(stored.length);
    expect(Buffer.from(got).equals(Buffer.from(stored))).toBe(false);
  });

  it('has() sends HEAD: 200 true, 404 false, 503 MirrorUnavailableError', async () => {
    const { server, source } = await setup();
    const present = makeBlock(12);
    server.blocks.set(present.ref.id, present.stored);
    expect(await source.has(present.ref)).toBe(true);
    expect(await source.has(makeBlock(13).ref)).toBe(false);
    server.fault = () => ({ kind: 'status', status: 503 });
    await expect(source.has(present.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
    expect(server.requests.map((r) => r.method)).toEqual(['HEAD', 'HEAD', 'HEAD']);
  });

  it('a redirect for a block is not followed: MirrorUnavailableError naming the target and --mirror', async () => {
    const { server, source } = await setup();
    const b = makeBlock(14);
    server.blocks.set(b.ref.id, b.stored);
    server.fault = () => ({ kind: 'status', status: 302, location: 'https://cdn.example/store/blocks/x' });
    const e = await source.get(b.ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toContain(
      'HTTP 302 redirect to https://cdn.example/store/blocks/x (blocks are not fetched through redirects: give the store',
    );
    expect(server.requests).toHaveLength(1);
  });

  it('keeps the connection alive across requests', async () => {
    const { server, source } = await setup();
    for (let i = 0; i < 10; i++) {
      const { ref, stored } = makeBlock(20 + i);
      server.blocks.set(ref.id, stored);
      await source.get(ref);
      await source.get(makeBlock(99).ref).catch(() => {}); // a 404 does not cost the connection either
    }
    expect(server.requests.length).toBe(20);
    // undici may open a second connection while the first is still being marked free; never one per request.
    expect(server.connections).toBeLessThanOrEqual(2);
  });

  it('never has more than `connections` requests in flight', async () => {
    const { server, source } = await setup({ connections: 2 });
    server.fault = () => ({ kind: 'delay', ms: 50 });
    const blocks = Array.from({ length: 6 }, (_, i) => makeBlock(30 + i));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    await Promise.all(blocks.map(({ ref }, i) => source.get(ref, { priority: i % 2 ? 'background' : 'demand' })));
    expect(server.requests.length).toBe(6);
    expect(server.maxActive).toBe(2);
  });

  it('serves a demand read before queued background reads', async () => {
    const { server, source } = await setup({ connections: 2 });
    server.fault = () => ({ kind: 'delay', ms: 150 });
    const blocks = Array.from({ length: 5 }, (_, i) => makeBlock(40 + i));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    const done: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => done.push(name));
    const background = blocks
      .slice(0, 4)
      .map(({ ref }, i) => track(`bg${i + 1}`, source.get(ref, { priority: 'background' })));
    const demand = track('demand', source.get((blocks[4] as { ref: BlockRef }).ref));
    await Promise.all([...background, demand]);
    // bg1 took the one background slot; the demand read took the slot kept free for it.
    expect(done.indexOf('demand')).toBeLessThan(done.indexOf('bg2'));
    expect(done.slice(-3)).toEqual(['bg2', 'bg3', 'bg4']);
  });

  it('a queued demand read overtakes background reads queued before it', async () => {
    const { server, source } = await setup({ connections: 2 });
    server.fault = () => ({ kind: 'delay', ms: 150 });
    const blocks = Array.from({ length: 6 }, (_, i) => makeBlock(50 + i));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    const ref = (i: number) => (blocks[i] as { ref: BlockRef }).ref;
    const done: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => done.push(name));
    const all = [
      track('d1', source.get(ref(0))), // both slots busy: d1 and bg1
      track('bg1', source.get(ref(1), { priority: 'background' })),
      track('bg2', source.get(ref(2), { priority: 'background' })),
      track('bg3', source.get(ref(3), { priority: 'background' })),
      track('bg4', source.get(ref(4), { priority: 'background' })),
      track('d2', source.get(ref(5))), // queued last, served next
    ];
    await Promise.all(all);
    expect(done.indexOf('d2')).toBeLessThan(done.indexOf('bg3'));
    expect(done.indexOf('d2')).toBeLessThan(done.indexOf('bg4'));
    // The server saw d2's request before bg3's, though bg3 was asked for first.
    const order = server.requests.map((r) => blocks.findIndex((b) => b.ref.id === r.id));
    expect(order.indexOf(5)).toBeLessThan(order.indexOf(3));
  });

  it('a queued background read whose urgency is raised moves to the demand queue', async () => {
    const { server, source } = await setup({ connections: 2 });
    server.fault = () => ({ kind: 'delay', ms: 150 });
    const blocks = Array.from({ length: 5 }, (_, i) => makeBlock(70 + i));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    const ref = (i: number) => (blocks[i] as { ref: BlockRef }).ref;
    const raised = new Urgency('background');
    const all = [
      source.get(ref(0)), // demand: one slot
      source.get(ref(1), { priority: 'background' }), // the one background slot
      source.get(ref(2), { priority: 'background' }), // queued
      source.get(ref(3), { priority: 'background' }), // queued
      source.get(ref(4), { priority: 'background', urgency: raised }), // queued last
    ];
    await new Promise((resolve) => setTimeout(resolve, 20));
    raised.raise(); // a reader now waits on block 4
    await Promise.all(all);
    const order = server.requests.map((r) => blocks.findIndex((b) => b.ref.id === r.id));
    expect(order.slice(0, 2).sort()).toEqual([0, 1]);
    expect(order[2]).toBe(4); // next free slot: ahead of the background reads queued before it
    expect(server.requests).toHaveLength(5); // moved, not sent twice
    expect(server.maxActive).toBe(2);
  });

  it('raising a request already on the wire changes nothing and frees its slot as background', async () => {
    const { server, source } = await setup({ connections: 2 });
    server.fault = () => ({ kind: 'delay', ms: 50 });
    const blocks = Array.from({ length: 4 }, (_, i) => makeBlock(80 + i));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    const urgency = new Urgency('background');
    const first = source.get((blocks[0] as { ref: BlockRef }).ref, { priority: 'background', urgency });
    await new Promise((resolve) => setTimeout(resolve, 10));
    urgency.raise();
    await first;
    // Slot accounting stayed right: background work still gets its one slot, demand the other.
    await Promise.all(blocks.slice(1).map(({ ref }, i) => source.get(ref, { priority: i ? 'background' : 'demand' })));
    expect(server.requests).toHaveLength(4);
    expect(server.maxActive).toBeLessThanOrEqual(2);
  });

  it('a pre-aborted signal rejects with its reason and sends nothing', async () => {
    const { server, source } = await setup();
    const reason = new Error('stop');
    await expect(source.get(makeBlock(60).ref, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(server.requests.length).toBe(0);
  });

  it('an abort in flight rejects promptly with the reason, not MirrorUnavailableError', async () => {
    const { server, source } = await setup();
    const { ref, stored } = makeBlock(61);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'delay', ms: 5_000 });
    const ac = new AbortController();
    const reason = new Error('unmounting');
    setTimeout(() => ac.abort(reason), 50);
    const t0 = performance.now();
    await expect(source.get(ref, { signal: ac.signal })).rejects.toBe(reason);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  it('an abort while queued rejects with the reason and frees nothing it did not take', async () => {
    const { server, source } = await setup({ connections: 1 });
    const a = makeBlock(62);
    const b = makeBlock(63);
    server.blocks.set(a.ref.id, a.stored);
    server.blocks.set(b.ref.id, b.stored);
    server.fault = (r) => (r.id === a.ref.id ? { kind: 'delay', ms: 200 } : undefined);
    const first = source.get(a.ref);
    const ac = new AbortController();
    const queued = source.get(b.ref, { signal: ac.signal });
    const reason = new Error('never mind');
    ac.abort(reason);
    await expect(queued).rejects.toBe(reason);
    await first;
    expect(server.requests.map((r) => r.id)).toEqual([a.ref.id]);
    // The slot came back: a later request goes through.
    expect((await source.get(b.ref)).length).toBe(b.stored.length);
  });

  it('reports every exchange to onResult and logs one verbose line each', async () => {
    const results: HttpResult[] = [];
    const logger = new MemoryLogger();
    const { server, source } = await setup({}, { logger, onResult: (r) => results.push(r) });
    const { ref, stored } = makeBlock(64);
    server.blocks.set(ref.id, stored);
    await source.get(ref);
    server.fault = () => ({ kind: 'status', status: 503 });
    await source.get(ref).catch(() => {});
    expect(results).toHaveLength(2);
    expect(results[0]).toMatchObject({ ok: true, bytes: stored.length, status: 200 });
    expect(results[0]?.ms).toBeGreaterThan(0);
    expect(results[1]).toMatchObject({ ok: false, bytes: 0, status: 503 });
    expect(results[1]?.error).toBeInstanceOf(MirrorUnavailableError);
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines[0]).toMatch(new RegExp(`^FETCH GET .*/store/blocks/.*: 200, ${stored.length} bytes in`));
    expect(logger.lines[1]).toMatch(/^FETCH GET .*: http\(.*\) unavailable: HTTP 503 after/);
  });

  it('close() rejects queued requests and later ones', async () => {
    const { server, source } = await setup({ connections: 1 });
    const a = makeBlock(65);
    server.blocks.set(a.ref.id, a.stored);
    server.fault = () => ({ kind: 'delay', ms: 100 });
    const inFlight = source.get(a.ref);
    const queued = source.get(a.ref);
    while (server.requests.length === 0) await delay(5);
    const closing = source.close();
    await expect(queued).rejects.toThrow(/closed/);
    await inFlight;
    await closing;
    await expect(source.get(a.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
  });

  it('uses an injected dispatcher and leaves it open on close()', async () => {
    const agent = new Agent();
    cleanups.push(() => agent.close());
    let connects = 0;
    agent.on('connect', () => {
      connects++;
    });
    const { server, source } = await setup({}, { dispatcher: agent });
    const { ref, stored } = makeBlock(66);
    server.blocks.set(ref.id, stored);
    await source.get(ref);
    expect(connects).toBe(1);
    await source.close();
    expect(agent.closed).toBe(false);
  });
});

describe('HttpSource request window, deadlines and slow mirrors', () => {
  it('a transfer below the low-speed limit is abandoned after about the low-speed time', async () => {
    const { server, source } = await setup({ lowSpeedBps: 1024, lowSpeedTimeMs: 400, timeoutMs: 10_000 });
    const { ref, stored } = makeBlock(300);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'drip', everyMs: 100 });
    const t0 = performance.now();
    const e = await source.get(ref).catch((e: unknown) => e);
    const elapsed = performance.now() - t0;
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as Error).message).toMatch(/too slow: \d+ B\/s over 0.4 s \(the low-speed limit is 1024 B\/s\)/);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(1_500); // not the 10 s deadline
  });

  it('a slow but steady transfer above the limit is not cut', async () => {
    const { server, source } = await setup({ lowSpeedBps: 100, lowSpeedTimeMs: 200 });
    const { ref, stored } = makeBlock(301, 512);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'drip', everyMs: 2 }); // ~500 B/s, for longer than the low-speed time
    const t0 = performance.now();
    expect(Buffer.from(await source.get(ref)).equals(Buffer.from(stored))).toBe(true);
    expect(performance.now() - t0).toBeGreaterThan(200);
  });

  it("the deadline of a request starts when it gets its slot, not while it queues behind the client's own", async () => {
    const { server, source } = await setup({ connections: 1 });
    const a = makeBlock(310);
    const b = makeBlock(311);
    for (const { ref, stored } of [a, b]) server.blocks.set(ref.id, stored);
    server.fault = (r) => (r.id === a.ref.id ? { kind: 'delay', ms: 400 } : undefined);
    const first = source.get(a.ref, { timeoutMs: 1_000 });
    // Queued for ~400 ms behind the first; its own exchange is quick, so a 250 ms deadline is enough.
    const second = source.get(b.ref, { timeoutMs: 250 });
    await expect(first).resolves.toBeDefined();
    await expect(second).resolves.toBeDefined();
  });

  it('429 with Retry-After halves the window and pauses new requests until then', async () => {
    const { server, source } = await setup({ initialConnections: 8 });
    const { ref, stored } = makeBlock(320);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'busy', status: 429, retryAfter: '1' });
    await expect(source.get(ref)).rejects.toThrow(/HTTP 429/);
    expect(source.windowSnapshot()).toMatchObject({ limit: 4, mode: 'paused' });
    server.fault = () => undefined;
    const t0 = performance.now();
    await source.get(ref);
    expect(performance.now() - t0).toBeGreaterThan(800); // waited out the pause
  });

  it('503, a timeout and a reset each halve the window; a 404 and bad bytes do not', async () => {
    const { server, source } = await setup({ initialConnections: 16, timeoutMs: 200 });
    const { ref, stored } = makeBlock(330);
    server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'corrupt' });
    await source.get(ref); // same length, bad bytes: HttpSource does not verify, and the window does not care
    server.fault = () => ({ kind: 'short' });
    await source.get(ref).catch(() => {});
    await source.get(makeBlock(331).ref).catch(() => {}); // 404
    expect(source.windowSnapshot().limit).toBe(16);
    server.fault = () => ({ kind: 'status', status: 503 });
    await source.get(ref).catch(() => {});
    expect(source.windowSnapshot().limit).toBe(8);
  });

  it('a dripped block while others answer is abandoned without halving the window; a stall of everything halves it', async () => {
    const { server, source } = await setup({
      initialConnections: 16,
      lowSpeedBps: 1024,
      lowSpeedTimeMs: 300,
      timeoutMs: 10_000,
    });
    const slow = makeBlock(340);
    const quick = makeBlock(341);
    for (const { ref, stored } of [slow, quick]) server.blocks.set(ref.id, stored);
    server.fault = (r) => (r.id === slow.ref.id ? { kind: 'drip', everyMs: 100 } : undefined);
    const dripping = source.get(slow.ref).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await source.get(quick.ref); // answers while the drip is out
    expect(await dripping).toBeInstanceOf(MirrorUnavailableError);
    expect(source.windowSnapshot().limit).toBe(16);
    // Two at once, both dripping: nothing answered while they were out, so the path stalled.
    const other = makeBlock(342);
    server.blocks.set(other.ref.id, other.stored);
    server.fault = () => ({ kind: 'drip', everyMs: 100 });
    await Promise.all([source.get(slow.ref), source.get(other.ref)].map((p) => p.catch(() => {})));
    expect(source.windowSnapshot().limit).toBe(8);
  });

  it('a request aborted because it lost to its hedge halves a silent window; a hedge that lost to its request does not', async () => {
    const { server, source } = await setup({ initialConnections: 16, timeoutMs: 10_000 });
    const blocks = [400, 401, 402, 403].map((seed) => makeBlock(seed));
    for (const { ref, stored } of blocks) server.blocks.set(ref.id, stored);
    server.fault = () => ({ kind: 'delay', ms: 5_000 }); // nothing answers while they are out
    const lose = async (a: (typeof blocks)[number], b: (typeof blocks)[number], wasHedge: boolean) => {
      const loser = new AbortController();
      const other = new AbortController();
      const gets = [source.get(a.ref, { signal: loser.signal }), source.get(b.ref, { signal: other.signal })].map((p) =>
        p.catch(() => {}),
      );
      await delay(200);
      loser.abort(new HedgeLost(wasHedge));
      await delay(50); // the loser's slot is given back while the other is still out
      other.abort(new Error('test over'));
      await Promise.all(gets);
    };
    await lose(blocks[0] as (typeof blocks)[number], blocks[1] as (typeof blocks)[number], true);
    expect(source.windowSnapshot().limit).toBe(16); // the hedge was merely second: nothing about the path
    await lose(blocks[2] as (typeof blocks)[number], blocks[3] as (typeof blocks)[number], false);
    expect(source.windowSnapshot().limit).toBe(8); // the first request was in the tail, and so was everything else
  });

  it('onStalling is called once, soon after the headers, for a dripping body; never for a prompt or a late one', async () => {
    const { server, source } = await setup(); // the default low-speed limit, 1 KiB/s over 2 s
    const dripped = makeBlock(350);
    const prompt = makeBlock(351);
    const late = makeBlock(352);
    for (const { ref, stored } of [dripped, prompt, late]) server.blocks.set(ref.id, stored);
    server.fault = (r) =>
      r.id === dripped.ref.id
        ? { kind: 'drip', everyMs: 100 }
        : r.id === late.ref.id
          ? { kind: 'delay', ms: 300 }
          : undefined;
    const calls: string[] = [];
    const onStalling = (name: string) => () => calls.push(name);
    await source.get(prompt.ref, { onStalling: onStalling('prompt') });
    await source.get(late.ref, { onStalling: onStalling('late') }); // slow to answer, then a body at once
    expect(calls).toEqual([]);

    const controller = new AbortController();
    const t0 = performance.now();
    let stalledAfter = 0;
    const got = source.get(dripped.ref, {
      signal: controller.signal,
      onStalling: () => {
        calls.push('dripped');
        stalledAfter = performance.now() - t0;
        controller.abort(new Error('hedged'));
      },
    });
    await expect(got).rejects.toThrow('hedged');
    expect(calls).toEqual(['dripped']);
    expect(stalledAfter).toBeGreaterThanOrEqual(STALLING_CHECK_MS * 0.9);
    expect(stalledAfter).toBeLessThan(STALLING_CHECK_MS * 6); // not the 2 s low-speed time
  });

  it('Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-06T10:00:00Z');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs('Sun, 06 Dec 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Sun, 06 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});
