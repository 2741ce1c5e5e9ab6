import { MirrorUnavailableError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_INITIAL_WINDOW,
  MAX_RETRY_AFTER_MS,
  RequestWindow,
  type WindowSlot,
} from '../src/sources/request-window.js';
import { Urgency } from '../src/sources/urgency.js';

/** Lets granted acquire() promises settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A link on a virtual clock, with every slot the window grants used at once:
 * each exchange takes the round trip plus its bytes at the link's rate shared
 * by the exchanges in flight (processor sharing, roughly), and a reader always
 * waits for more. Returns the window's limit over time.
 */
async function simulate(
  window: RequestWindow,
  clock: { now: number },
  link: { rttMs: number; bytesPerSecond: number; blockBytes: number; seconds: number; fifo?: boolean },
): Promise<{ limits: number[]; bytes: number }> {
  const events: { at: number; slot: WindowSlot; ms: number }[] = [];
  const limits: number[] = [];
  let bytes = 0;
  let waiting = 0;
  /** fifo: one link sending one answer at a time, each held for the round trip first (as `proxy --inject`). */
  let linkFreeAt = clock.now;
  const end = clock.now + link.seconds * 1000;
  const ask = () => {
    waiting++;
    void window.acquire('demand', link.blockBytes).then(
      (slot) => {
        waiting--;
        const inFlight = window.snapshot().inFlight;
        const sendMs = (link.blockBytes / link.bytesPerSecond) * 1000;
        if (link.fifo) linkFreeAt = Math.max(linkFreeAt, clock.now + link.rttMs) + sendMs;
        const ms = link.fifo ? linkFreeAt - clock.now : link.rttMs + sendMs * inFlight;
        events.push({ at: clock.now + ms, slot, ms });
      },
      () => {}, // closed at the end
    );
  };
  while (clock.now < end) {
    while (waiting < 4) ask();
    await settle();
    events.sort((a, b) => a.at - b.at);
    const next = events.shift();
    if (!next) continue;
    clock.now = next.at;
    bytes += link.blockBytes;
    next.slot.done({ kind: 'answer', bytes: link.blockBytes, ms: next.ms });
    limits.push(window.limit);
  }
  window.close();
  return { limits, bytes };
}

describe('RequestWindow scheduling', () => {
  it('pinned: never more than N in flight, background never in the last slot, demand first', async () => {
    const w = new RequestWindow({}, { pinned: 3 });
    const granted: string[] = [];
    const slots: WindowSlot[] = [];
    const take = (name: string, p: 'demand' | 'background') =>
      w.acquire(p, 100).then((s) => {
        granted.push(name);
        slots.push(s);
      });
    void take('b1', 'background');
    void take('b2', 'background');
    void take('b3', 'background'); // background may hold 2 of 3
    void take('d1', 'demand');
    void take('d2', 'demand');
    await settle();
    expect(granted).toEqual(['b1', 'b2', 'd1']);
    expect(w.snapshot()).toMatchObject({ mode: 'pinned', limit: 3, inFlight: 3, queued: 2 });
    slots[0]?.done({ kind: 'answer', bytes: 100, ms: 1 });
    await settle();
    expect(granted).toEqual(['b1', 'b2', 'd1', 'd2']); // the waiting demand request before the earlier background one
    slots[0]?.done({ kind: 'answer', bytes: 100, ms: 1 }); // a second done() of one slot frees nothing
    await settle();
    expect(granted).toHaveLength(4);
  });

  it('a raised background request moves to the demand queue; an abort while queued takes nothing', async () => {
    const w = new RequestWindow({}, { pinned: 2 });
    const first = await w.acquire('demand', 1);
    const second = await w.acquire('background', 1);
    const urgency = new Urgency('background');
    const order: string[] = [];
    const ac = new AbortController();
    const aborted = w.acquire('demand', 1, ac.signal).catch((e: unknown) => e);
    void w.acquire('background', 1).then(() => order.push('plain'));
    void w.acquire('background', 1, undefined, urgency).then(() => order.push('raised'));
    ac.abort(new Error('gone'));
    expect(((await aborted) as Error).message).toBe('gone');
    urgency.raise();
    first.done({ kind: 'neutral' });
    await settle();
    expect(order).toEqual(['raised']);
    second.done({ kind: 'neutral' });
    await settle();
    expect(order).toEqual(['raised', 'plain']);
  });

  it('keeps to the byte budget, but always lets one request through', async () => {
    const w = new RequestWindow({}, { pinned: 10, maxBytes: 1000 });
    const a = await w.acquire('demand', 600);
    let second = false;
    void w.acquire('demand', 600).then(() => {
      second = true;
    });
    await settle();
    expect(second).toBe(false);
    a.done({ kind: 'answer', bytes: 600, ms: 1 });
    await settle();
    expect(second).toBe(true);
    const big = await new RequestWindow({}, { pinned: 2, maxBytes: 10 }).acquire('demand', 5000);
    expect(big.priority).toBe('demand');
  });

  it('close() fails the queue and later requests', async () => {
    const w = new RequestWindow({}, { pinned: 1 });
    await w.acquire('demand', 1);
    const queued = w.acquire('demand', 1).catch((e: unknown) => e);
    w.close(new MirrorUnavailableError('m', 'closed'));
    expect(await queued).toBeInstanceOf(MirrorUnavailableError);
    await expect(w.acquire('demand', 1)).rejects.toBeInstanceOf(MirrorUnavailableError);
  });
});

describe('RequestWindow adaptation', () => {
  it('starts at DEFAULT_INITIAL_WINDOW and grows to the maximum on a long link with bandwidth to spare', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { max: 32 });
    expect(w.limit).toBe(DEFAULT_INITIAL_WINDOW);
    const { limits } = await simulate(w, clock, {
      rttMs: 50,
      bytesPerSecond: 125e6,
      blockBytes: 90_000,
      seconds: 3,
    });
    // 1 Gbit/s at 50 ms RTT needs ~70 blocks in flight: the window goes to its maximum and stays there.
    expect(Math.max(...limits)).toBe(32);
    expect(limits.slice(-50).every((l) => l >= 24)).toBe(true);
  });

  it('settles well below the maximum where more in flight buys no goodput', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { max: 32 });
    // A fast round trip and a narrow link: 4 in flight already fill it.
    const { limits } = await simulate(w, clock, {
      rttMs: 1,
      bytesPerSecond: 20e6,
      blockBytes: 90_000,
      seconds: 20,
    });
    const late = limits.slice(-200);
    expect(Math.max(...late)).toBeLessThanOrEqual(16);
  });

  it('probing never takes the window below twice the bandwidth-delay product', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { max: 32 });
    // 100 Mbit/s at 50 ms: one BDP is 625 kB, ~7 blocks of 90 kB; 8 in flight already "hold" the goodput of 16.
    const { limits, bytes } = await simulate(w, clock, {
      rttMs: 50,
      bytesPerSecond: 12.5e6,
      blockBytes: 90_000,
      seconds: 30,
      fifo: true,
    });
    const bdpBlocks = (12.5e6 * 0.05) / 90_000;
    const late = limits.slice(-1000);
    expect(Math.min(...late)).toBeGreaterThanOrEqual(Math.floor(2 * bdpBlocks));
    expect(w.bdpFloor()).toBeGreaterThanOrEqual(Math.floor(2 * bdpBlocks));
    expect(bytes / 30).toBeGreaterThan(0.9 * 12.5e6);
  });

  it('halves on congestion, at most once a second, and pauses for Retry-After', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { initial: 16, max: 32 });
    const a = await w.acquire('demand', 1);
    const b = await w.acquire('demand', 1);
    a.done({ kind: 'congestion' });
    expect(w.limit).toBe(8);
    b.done({ kind: 'congestion' }); // the same burst: not halved again
    expect(w.limit).toBe(8);
    clock.now += 2_000;
    const c = await w.acquire('demand', 1);
    const d = await w.acquire('demand', 1);
    c.done({ kind: 'congestion', retryAfterMs: 5_000 });
    expect(w.limit).toBe(4);
    expect(w.snapshot().mode).toBe('paused');
    let granted = false;
    void w.acquire('demand', 1).then(() => {
      granted = true;
    });
    await settle();
    expect(granted).toBe(false); // a slot is free, but the mirror asked for a pause
    clock.now += 5_001;
    d.done({ kind: 'neutral' });
    await settle();
    expect(granted).toBe(true);
    w.close();
  });

  it('a pause timer that fires before the clock says the pause is over still grants the queue later', async () => {
    // Nothing in flight, so no done() will pump: only the pause timer can. Here it fires (after ~20 ms of real
    // time) while the window's clock still reads "paused", as a timer a fraction of a ms early does.
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { initial: 4 });
    const a = await w.acquire('demand', 1);
    a.done({ kind: 'congestion', retryAfterMs: 20 });
    let granted = false;
    void w.acquire('demand', 1).then(() => {
      granted = true;
    });
    await new Promise((r) => setTimeout(r, 60)); // the first timer has fired, the clock has not moved
    expect(granted).toBe(false);
    clock.now += 21;
    await new Promise((r) => setTimeout(r, 60));
    expect(granted).toBe(true);
    expect(w.snapshot()).toMatchObject({ mode: 'steady', inFlight: 1, queued: 0 });
    w.close();
  });

  it('a stalled transfer halves the window only when others were out and none answered while it was', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { initial: 16, max: 32 });
    const slow = await w.acquire('demand', 1);
    clock.now += 10;
    const quick = await w.acquire('demand', 1);
    clock.now += 10;
    quick.done({ kind: 'answer', bytes: 1000, ms: 10 });
    clock.now += 2_000;
    slow.done({ kind: 'stalled' }); // the others kept answering: that one response was slow, not the path
    expect(w.limit).toBe(16);
    const alone = await w.acquire('demand', 1);
    clock.now += 2_000;
    alone.done({ kind: 'stalled' }); // nothing else out: it says nothing about the path
    expect(w.limit).toBe(16);
    const a = await w.acquire('demand', 1);
    const b = await w.acquire('demand', 1);
    clock.now += 2_000;
    a.done({ kind: 'stalled' }); // b is out and silent too: the path stalled
    expect(w.limit).toBe(8);
    b.done({ kind: 'neutral' });
    w.close();
  });

  it('a stall reported sooner after its grant than any exchange has ever taken says nothing about the path', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { initial: 16, max: 32 });
    const first = await w.acquire('demand', 1);
    clock.now += 50;
    first.done({ kind: 'answer', bytes: 1000, ms: 50 }); // the shortest exchange so far: 50 ms
    const out = await w.acquire('demand', 1);
    clock.now += 5;
    const late = await w.acquire('demand', 1);
    clock.now += 5;
    late.done({ kind: 'stalled' }); // out 5 ms: nothing could have answered yet
    expect(w.limit).toBe(16);
    const again = await w.acquire('demand', 1);
    clock.now += 60;
    again.done({ kind: 'stalled' }); // out longer than any exchange takes, and `out` silent all along
    expect(w.limit).toBe(8);
    out.done({ kind: 'neutral' });
    w.close();
  });

  it('a stall reported moments after its grant does not void the round it ended in', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { initial: 4, max: 32 });
    const slots = await Promise.all([1, 2, 3, 4].map(() => w.acquire('demand', 1)));
    const waiting = w.acquire('demand', 1); // somebody waits: the round measures the link
    const [a, b, c, d] = slots as [WindowSlot, WindowSlot, WindowSlot, WindowSlot];
    clock.now = 60;
    a.done({ kind: 'answer', bytes: 90_000, ms: 60 });
    const brief = await waiting;
    clock.now = 61;
    brief.done({ kind: 'stalled' }); // beaten by its hedge 1 ms after its grant
    clock.now = 62;
    for (const s of [b, c, d]) s.done({ kind: 'answer', bytes: 90_000, ms: 62 });
    expect(w.limit).toBe(8); // the round counted: slow start doubled
    w.close();
  });

  it('slow start doubles once a round trip: from 4, a 50 ms link reaches 32 within 300 ms', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, { initial: 4, max: 32 });
    await simulate(w, clock, { rttMs: 50, bytesPerSecond: 125e6, blockBytes: 90_000, seconds: 0.3 });
    // 4, 8, 16, 32 within 300 ms: one round of one window's answers each. Rounds of 16 answers took 4 + 2 + 1.
    expect(w.limit).toBe(32);
  });

  it('never pauses longer than MAX_RETRY_AFTER_MS whatever the mirror asks', async () => {
    const clock = { now: 0 };
    const w = new RequestWindow({ now: () => clock.now }, {});
    const a = await w.acquire('demand', 1);
    a.done({ kind: 'congestion', retryAfterMs: 3_600_000 });
    clock.now += MAX_RETRY_AFTER_MS + 1;
    expect(w.snapshot().mode).not.toBe('paused');
    w.close();
  });
});
