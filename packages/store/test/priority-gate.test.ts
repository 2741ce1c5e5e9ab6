import { describe, expect, it } from 'vitest';
import { type GatePolicy, type GateWaiter, PriorityGate } from '../src/sources/priority-gate.js';
import { type Priority, Urgency } from '../src/sources/urgency.js';

/** A waiter that logs what happens to it, and holds its slot until let go. */
class Probe implements GateWaiter {
  granted = false;
  failedWith: unknown;

  constructor(
    readonly name: string,
    public priority: Priority,
    private readonly log: string[],
    readonly bytes = 0,
  ) {}

  grant(): void {
    this.granted = true;
    this.log.push(this.name);
  }

  fail(error: unknown): void {
    this.failedWith = error;
    this.log.push(`${this.name}!`);
  }
}

/** An Urgency that counts the queues listening to it. */
class CountedUrgency extends Urgency {
  listening = 0;

  override onRaise(listener: () => void): () => void {
    const stop = super.onRaise(listener);
    this.listening++;
    return () => {
      this.listening--;
      stop();
    };
  }
}

function setup(capacity: number, policy: GatePolicy<Probe> = {}) {
  const gate = new PriorityGate<Probe>(policy, { capacity });
  const log: string[] = [];
  const probe = (name: string, priority: Priority = 'demand', bytes = 0) => new Probe(name, priority, log, bytes);
  /** As an owner asks: a slot at once if tryTake() gives one, else a place in the queue. */
  const enter = (p: Probe, signal?: AbortSignal, urgency?: Urgency) => {
    if (gate.tryTake(p.priority)) p.grant();
    else gate.wait(p, signal, urgency);
  };
  /** Frees the slot `p` holds and lets the next in. */
  const finish = (p: Probe) => {
    gate.release(p.priority);
    gate.pump();
  };
  return { gate, log, probe, enter, finish };
}

describe('PriorityGate grants', () => {
  it('grants at most capacity slots; a released slot goes to the next in line', () => {
    const { gate, log, probe, enter, finish } = setup(2);
    expect(gate.tryTake('demand')).toBe(true);
    expect(gate.tryTake('background')).toBe(true);
    expect(gate.tryTake('demand')).toBe(false);
    const a = probe('a');
    enter(a);
    expect(log).toEqual([]);
    expect(gate.snapshot()).toEqual({
      capacity: 2,
      inFlight: 2,
      backgroundInFlight: 1,
      demandQueued: 1,
      backgroundQueued: 0,
    });
    gate.release('background');
    expect(log).toEqual([]); // the owner pumps when it is ready
    gate.pump();
    expect(log).toEqual(['a']);
    expect(gate.snapshot()).toMatchObject({ inFlight: 2, backgroundInFlight: 0, demandQueued: 0 });
    finish(a);
    expect(gate.inFlight).toBe(1);
  });

  it('demand first, each queue first-come; a newcomer never overtakes a waiter of its queue', () => {
    const { gate, log, probe, enter, finish } = setup(1);
    expect(gate.tryTake('demand')).toBe(true);
    const waiters = [probe('b1', 'background'), probe('d1'), probe('b2', 'background'), probe('d2')];
    for (const w of waiters) enter(w);
    expect(gate.tryTake('demand')).toBe(false);
    gate.release('demand');
    expect(gate.tryTake('background')).toBe(false); // b1 and b2 wait: no overtaking, even with a slot free
    gate.pump();
    for (const name of ['d1', 'd2', 'b1']) finish(waiters.find((w) => w.name === name) as Probe);
    expect(log).toEqual(['d1', 'd2', 'b1', 'b2']);
  });

  it('background work holds at most the policy’s background limit; demand takes the rest', () => {
    const { gate, log, probe, enter } = setup(4, { backgroundLimit: (capacity) => capacity - 1 });
    for (const name of ['b1', 'b2', 'b3', 'b4']) enter(probe(name, 'background'));
    expect(log).toEqual(['b1', 'b2', 'b3']);
    expect(gate.tryTake('background')).toBe(false);
    expect(gate.tryTake('demand')).toBe(true);
    expect(gate.snapshot()).toMatchObject({ inFlight: 4, backgroundInFlight: 3, backgroundQueued: 1 });
    gate.release('background');
    expect(gate.tryTake('background')).toBe(false); // b4 was first
    gate.pump();
    expect(log).toEqual(['b1', 'b2', 'b3', 'b4']);
  });

  it('a capacity raised by the owner is used at the next pump', () => {
    const { gate, log, probe, enter } = setup(1);
    for (const name of ['a', 'b', 'c']) enter(probe(name));
    expect(log).toEqual(['a']);
    gate.capacity = 3;
    gate.pump();
    expect(log).toEqual(['a', 'b', 'c']);
  });
});

describe('PriorityGate urgency and abort', () => {
  it('a raised background waiter moves to the back of the demand queue, ahead of all background', () => {
    const { gate, log, probe, enter, finish } = setup(1);
    expect(gate.tryTake('demand')).toBe(true);
    const urgency = new Urgency('background');
    const raised = probe('raised', 'background');
    const all = [probe('b1', 'background'), raised, probe('d1')];
    enter(all[0] as Probe, undefined, new Urgency('background'));
    enter(raised, undefined, urgency);
    enter(all[2] as Probe);
    urgency.raise();
    expect(raised.priority).toBe('demand');
    const d2 = probe('d2');
    enter(d2);
    all.push(d2);
    gate.release('demand');
    gate.pump();
    for (const name of ['d1', 'raised', 'd2']) finish(all.find((w) => w.name === name) as Probe);
    expect(log).toEqual(['d1', 'raised', 'd2', 'b1']);
  });

  it('a raise after the grant moves nothing and counts the slot at the priority it was granted at', () => {
    const { gate, probe, enter, finish } = setup(1);
    const held = probe('held');
    enter(held);
    const urgency = new CountedUrgency('background');
    const b = probe('b', 'background');
    enter(b, undefined, urgency);
    expect(urgency.listening).toBe(1);
    finish(held);
    expect(b.granted).toBe(true);
    expect(urgency.listening).toBe(0); // the gate stopped listening when it granted the slot
    urgency.raise();
    expect(b.priority).toBe('background');
    expect(gate.snapshot()).toMatchObject({ inFlight: 1, backgroundInFlight: 1, demandQueued: 0 });
  });

  it('an abort takes a waiter out of its queue with the signal’s reason; the next one gets its place', () => {
    const { gate, log, probe, enter } = setup(1);
    expect(gate.tryTake('demand')).toBe(true);
    const controller = new AbortController();
    const a = probe('a');
    enter(a, controller.signal);
    enter(probe('b'));
    controller.abort(new Error('gone'));
    expect((a.failedWith as Error).message).toBe('gone');
    expect(gate.snapshot()).toMatchObject({ inFlight: 1, demandQueued: 1 });
    gate.release('demand');
    gate.pump();
    expect(log).toEqual(['a!', 'b']);
  });

  it('an abort frees no slot once granted, and an aborted signal fails the waiter at once', () => {
    const { gate, log, probe, enter, finish } = setup(1);
    const held = probe('held');
    enter(held);
    const controller = new AbortController();
    const a = probe('a');
    enter(a, controller.signal);
    finish(held);
    controller.abort(new Error('late'));
    expect(a.failedWith).toBeUndefined();
    expect(gate.inFlight).toBe(1);
    const b = probe('b');
    enter(b, controller.signal);
    expect(log).toEqual(['held', 'a', 'b!']);
    expect(gate.queued).toBe(0);
  });
});

describe('PriorityGate failAll and policy', () => {
  it('failAll fails every queued waiter, demand first, and keeps the slots granted', () => {
    const { gate, log, probe, enter } = setup(1);
    enter(probe('held'));
    const urgency = new Urgency('background');
    enter(probe('b1', 'background'), undefined, urgency);
    enter(probe('d1'));
    const closed = new Error('closed');
    gate.failAll(closed);
    urgency.raise(); // no longer listened to
    expect(log).toEqual(['held', 'd1!', 'b1!']);
    expect(gate.snapshot()).toMatchObject({ inFlight: 1, demandQueued: 0, backgroundQueued: 0 });
  });

  it('a closed policy grants nothing; admits stops the pass at the head of the line; waiting is told', () => {
    let open = false;
    let budget = 10;
    let waitingCalls = 0;
    const { gate, log, probe } = setup(4, {
      open: () => open,
      admits: (next, inFlight) => inFlight === 0 || next.bytes <= budget,
      waiting: () => waitingCalls++,
    });
    gate.wait(probe('big', 'demand', 20));
    gate.wait(probe('small', 'demand', 1));
    gate.pump();
    expect(log).toEqual([]);
    expect(waitingCalls).toBe(0); // a closed pass says nothing
    open = true;
    gate.pump();
    expect(log).toEqual(['big', 'small']); // alone, anything fits; then small fits the budget
    expect(waitingCalls).toBe(0);
    budget = 0;
    gate.wait(probe('big2', 'demand', 20));
    gate.wait(probe('small2', 'demand', 1));
    gate.pump();
    expect(log).toEqual(['big', 'small']); // small2 fits but waits behind big2
    expect(waitingCalls).toBe(1);
    budget = 100;
    gate.pump();
    expect(log).toEqual(['big', 'small', 'big2', 'small2']);
  });
});
