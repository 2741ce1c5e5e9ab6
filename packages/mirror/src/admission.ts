/** One admitted request's hold on the bound; `release` is idempotent, so only its first call counts. */
export interface Slot {
  release(): void;
}

/**
 * The in-flight bound: at most `max` slots held at once. The count it admits
 * against is the count /metrics and the heartbeat report, so the gauge can
 * never drift from what admission sees.
 */
export class Admission {
  private held = 0;
  private idle: (() => void)[] = [];

  constructor(readonly max: number) {}

  /** Slots held now. */
  get inflight(): number {
    return this.held;
  }

  /** A slot, or undefined when all `max` are held. */
  admit(): Slot | undefined {
    if (this.held >= this.max) return undefined;
    this.held++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (--this.held === 0) for (const wake of this.idle.splice(0)) wake();
      },
    };
  }

  /** Resolves once no slot is held (at once if none is). */
  drained(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}
