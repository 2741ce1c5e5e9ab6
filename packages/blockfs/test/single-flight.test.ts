import type { Urgency } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import { raceAbort, SingleFlight } from '../src/io/single-flight.js';
import { deferred } from './image-fixtures.js';

/** A SingleFlight whose work is held until released, recording each start and its Urgency. */
function held() {
  const flight = new SingleFlight<string>();
  const starts: { urgency: Urgency; done: ReturnType<typeof deferred<string>> }[] = [];
  const work = (urgency: Urgency) => {
    const done = deferred<string>();
    starts.push({ urgency, done });
    return done.promise;
  };
  return { flight, starts, work };
}

describe('SingleFlight', () => {
  it('callers of one key join one run and all get its result', async () => {
    const { flight, starts, work } = held();
    const a = flight.run('k', 'demand', work);
    const b = flight.run('k', 'demand', work);
    const other = flight.run('j', 'demand', work);
    expect(starts).toHaveLength(2); // one for k, one for j
    expect(flight.running.has('k')).toBe(true);
    starts[0]?.done.resolve('block');
    starts[1]?.done.resolve('other');
    expect(await Promise.all([a, b, other])).toEqual(['block', 'block', 'other']);
  });

  it('a demand caller joining a background run raises it; a background caller does not', async () => {
    const { flight, starts, work } = held();
    const first = flight.run('k', 'background', work);
    const urgency = starts[0]?.urgency as Urgency;
    expect(urgency.priority).toBe('background');
    const second = flight.run('k', 'background', work);
    expect(urgency.priority).toBe('background');
    const reader = flight.run('k', 'demand', work);
    expect(urgency.priority).toBe('demand');
    expect(starts).toHaveLength(1);
    starts[0]?.done.resolve('x');
    expect(await Promise.all([first, second, reader])).toEqual(['x', 'x', 'x']);
  });

  it('a caller’s abort stops its wait, not the shared run', async () => {
    const { flight, starts, work } = held();
    const ac = new AbortController();
    const leaving = flight.run('k', 'demand', work, ac.signal);
    const staying = flight.run('k', 'demand', work);
    ac.abort(new Error('gone'));
    await expect(leaving).rejects.toThrow('gone');
    expect(flight.running.has('k')).toBe(true);
    starts[0]?.done.resolve('still');
    await expect(staying).resolves.toBe('still');
    expect(starts).toHaveLength(1);
  });

  it('an already aborted caller starts nothing', async () => {
    const { flight, starts, work } = held();
    const ac = new AbortController();
    ac.abort(new Error('before'));
    await expect(flight.run('k', 'demand', work, ac.signal)).rejects.toThrow('before');
    expect(starts).toHaveLength(0);
    expect(flight.running.has('k')).toBe(false);
  });

  it('the entry goes once the run settles, even when it fails, so the next caller starts afresh', async () => {
    const { flight, starts, work } = held();
    const failing = flight.run('k', 'demand', work);
    starts[0]?.done.reject(new Error('down'));
    await expect(failing).rejects.toThrow('down');
    expect(flight.running.has('k')).toBe(false);
    const again = flight.run('k', 'demand', work);
    expect(starts).toHaveLength(2);
    starts[1]?.done.resolve('up');
    await expect(again).resolves.toBe('up');
    expect(flight.running.has('k')).toBe(false);
  });

  it('join gives undefined with nothing in flight; start runs anew beside a run in flight, which later callers then join', async () => {
    const { flight, starts, work } = held();
    expect(flight.join('k', 'demand')).toBeUndefined();
    const old = flight.start('k', 'background', work);
    const fresh = flight.start('k', 'background', work);
    const joined = flight.join('k', 'background');
    expect(starts).toHaveLength(2);
    starts[1]?.done.resolve('new');
    starts[0]?.done.resolve('old');
    expect(await Promise.all([old, fresh, joined])).toEqual(['old', 'new', 'new']);
    expect(flight.running.has('k')).toBe(false); // the old run settling did not remove the new one's entry early
  });

  it('the old run settling does not remove the entry of the run that replaced it', async () => {
    const { flight, starts, work } = held();
    const old = flight.start('k', 'demand', work);
    const fresh = flight.start('k', 'demand', work);
    starts[0]?.done.resolve('old');
    await old;
    expect(flight.running.has('k')).toBe(true);
    starts[1]?.done.resolve('new');
    await fresh;
    expect(flight.running.has('k')).toBe(false);
  });
});

describe('raceAbort', () => {
  it('settles with the promise when the signal stays quiet', async () => {
    await expect(raceAbort(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(raceAbort(Promise.reject(new Error('no')), new AbortController().signal)).rejects.toThrow('no');
  });

  it('rejects with the signal’s reason on abort, before the promise settles', async () => {
    const ac = new AbortController();
    const p = raceAbort(new Promise(() => {}), ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    const aborted = new AbortController();
    aborted.abort(new Error('already'));
    await expect(raceAbort(Promise.resolve(1), aborted.signal)).rejects.toThrow('already');
  });
});
