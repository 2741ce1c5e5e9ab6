import type { Priority, Urgency } from './urgency.js';

/** One request waiting for a slot. */
export interface GateWaiter {
  /** Which queue it waits in; the gate sets it to demand when its Urgency is raised. */
  priority: Priority;
  /** It holds a slot, counted at `priority`, from now until the owner calls release(). */
  grant(): void;
  /** It left the queue without a slot: the signal's reason on abort, or failAll()'s error. */
  fail(error: unknown): void;
}

/** What the gate's owner adds to its rules. Each hook is called on every pass, so each must be cheap. */
export interface GatePolicy<W extends GateWaiter> {
  /** Whether any slot may be granted now (false while a mirror asked to wait); the owner pumps again later. */
  readonly open?: (() => boolean) | undefined;
  /** Whether the next waiter in line fits besides what is in flight (a byte budget); false stops the pass. */
  readonly admits?: ((next: W, inFlight: number) => boolean) | undefined;
  /** Slots background work may hold at this capacity; all of them by default. */
  readonly backgroundLimit?: ((capacity: number) => number) | undefined;
  /** Called after each pass that left somebody waiting. */
  readonly waiting?: (() => void) | undefined;
}

export interface GateSnapshot {
  readonly capacity: number;
  readonly inFlight: number;
  readonly backgroundInFlight: number;
  readonly demandQueued: number;
  readonly backgroundQueued: number;
}

/**
 * A queued waiter with what it listens to, the gate's own (not exported from
 * the package). It is the abort listener itself, so listening costs no closure.
 */
export class GateEntry<W extends GateWaiter> {
  stopRaise: (() => void) | undefined;

  constructor(
    readonly gate: PriorityGate<W>,
    readonly waiter: W,
    readonly signal: AbortSignal | undefined,
  ) {}

  handleEvent(): void {
    this.gate.abandon(this);
  }

  /** Stops listening to the signal and the urgency: the entry has left the queue. */
  leave(): void {
    this.signal?.removeEventListener('abort', this);
    this.stopRaise?.();
  }
}

/**
 * Capacity-bounded grants in two queues: demand (a reader waits) first-come,
 * then background (read-ahead, prefetch, fill) when no demand request waits
 * and fewer than the policy's background limit are out. A queued background
 * waiter whose Urgency is raised moves to the back of the demand queue; one
 * whose signal aborts leaves its queue and takes nothing. A pure scheduler: it
 * counts slots and calls back, and its owner (an HTTP mirror's RequestWindow,
 * the BlockWorkers threads) decides what a slot is and how many there are.
 */
export class PriorityGate<W extends GateWaiter = GateWaiter> {
  /** Slots in all; the owner may change it at any time and then pump(). */
  capacity: number;
  private inFlightCount = 0;
  private backgroundInFlightCount = 0;
  private readonly demand: GateEntry<W>[] = [];
  private readonly background: GateEntry<W>[] = [];
  private readonly policy: GatePolicy<W>;

  constructor(policy: GatePolicy<W>, options: { readonly capacity: number }) {
    this.policy = policy;
    this.capacity = options.capacity;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get queued(): number {
    return this.demand.length + this.background.length;
  }

  /**
   * Takes a slot now if one is free and nobody it would overtake waits: the
   * caller has the slot at once (and checks its own rules, such as a pause or
   * a byte budget, before asking). False takes nothing.
   */
  tryTake(priority: Priority): boolean {
    if (this.inFlightCount >= this.capacity || this.demand.length > 0) return false;
    if (priority === 'background') {
      if (this.background.length > 0 || this.backgroundInFlightCount >= this.backgroundLimit()) return false;
      this.backgroundInFlightCount++;
    }
    this.inFlightCount++;
    return true;
  }

  /**
   * Queues `waiter` by its priority, for a caller that tryTake() turned away
   * (it grants nothing itself: the owner pumps when slots free). An aborted
   * signal takes it out of its queue; a raised urgency moves a background
   * waiter to the demand queue.
   */
  wait(waiter: W, signal?: AbortSignal, urgency?: Urgency): void {
    if (signal?.aborted) {
      waiter.fail(signal.reason);
      return;
    }
    const entry = new GateEntry(this, waiter, signal);
    signal?.addEventListener('abort', entry, { once: true });
    if (waiter.priority === 'demand') this.demand.push(entry);
    else {
      this.background.push(entry);
      if (urgency) entry.stopRaise = urgency.onRaise(() => this.raise(entry));
    }
  }

  /** Frees a slot granted at `priority`. The owner pumps when it is ready to grant again. */
  release(priority: Priority): void {
    this.inFlightCount--;
    if (priority === 'background') this.backgroundInFlightCount--;
  }

  /** Grants slots to the heads of the queues while there is room: demand first. */
  pump(): void {
    const { open, admits, waiting } = this.policy;
    if (open && !open()) return;
    for (;;) {
      const next =
        this.demand[0] ?? (this.backgroundInFlightCount < this.backgroundLimit() ? this.background[0] : undefined);
      if (!next || this.inFlightCount >= this.capacity) break;
      if (admits && !admits(next.waiter, this.inFlightCount)) break;
      (next.waiter.priority === 'demand' ? this.demand : this.background).shift();
      next.leave();
      this.inFlightCount++;
      if (next.waiter.priority === 'background') this.backgroundInFlightCount++;
      next.waiter.grant();
    }
    if (waiting && this.demand.length + this.background.length > 0) waiting();
  }

  /** Fails every queued waiter with `error`, demand first. Slots granted already are untouched. */
  failAll(error: unknown): void {
    for (const entry of this.demand.splice(0).concat(this.background.splice(0))) {
      entry.leave();
      entry.waiter.fail(error);
    }
  }

  snapshot(): GateSnapshot {
    return {
      capacity: this.capacity,
      inFlight: this.inFlightCount,
      backgroundInFlight: this.backgroundInFlightCount,
      demandQueued: this.demand.length,
      backgroundQueued: this.background.length,
    };
  }

  /** An aborted waiter (its entry's signal calls this) leaves its queue and fails with the signal's reason. */
  abandon(entry: GateEntry<W>): void {
    const queue = entry.waiter.priority === 'demand' ? this.demand : this.background;
    const at = queue.indexOf(entry);
    if (at >= 0) queue.splice(at, 1);
    entry.leave();
    entry.waiter.fail(entry.signal?.reason);
    this.pump();
  }

  private raise(entry: GateEntry<W>): void {
    const at = this.background.indexOf(entry);
    if (at < 0) return; // granted already: on the wire, nothing to move
    this.background.splice(at, 1);
    entry.waiter.priority = 'demand';
    this.demand.push(entry);
    this.pump();
  }

  private backgroundLimit(): number {
    return this.policy.backgroundLimit ? this.policy.backgroundLimit(this.capacity) : this.capacity;
  }
}
