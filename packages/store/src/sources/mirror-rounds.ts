import { BlockNotFoundError } from '@thfc/format';
import type { FailoverMirror } from './failover.js';
import { LowSpeedError } from './low-speed-error.js';

/**
 * The order in which one Failover.get asks its mirrors: round after round, each round in the rank order of its
 * start, past the mirrors that answered they do not hold the block. A body that stalled earns one more round, up to
 * `maxStallRounds` of them. Pure bookkeeping: no I/O, no clock but the ranking it is given.
 */
export class MirrorRounds<M extends FailoverMirror = FailoverMirror> {
  readonly answeredNotFound = new Set<M>();
  /** Each mirror's last failure other than "not found". */
  readonly lastFailure = new Map<M, Error>();
  /** Rounds allowed; grows with stalls. */
  rounds: number;
  /** The round of the last mirror handed out (0 before the first). */
  round = 0;
  private stallRounds = 0;
  private order: M[] = [];
  private nextInOrder = 0;

  constructor(
    rounds: number,
    private readonly rank: () => M[],
    private readonly mirrorCount: () => number,
    private readonly maxStallRounds: number,
  ) {
    this.rounds = rounds;
  }

  /** The next mirror to ask, round after round, and the round it belongs to. */
  next(): { mirror: M; round: number } | undefined {
    for (;;) {
      while (this.nextInOrder < this.order.length) {
        const m = this.order[this.nextInOrder++] as M;
        if (!this.answeredNotFound.has(m)) return { mirror: m, round: this.round };
      }
      if (this.round >= this.rounds) return undefined;
      this.round++;
      this.order = this.rank().filter((x) => !this.answeredNotFound.has(x));
      this.nextInOrder = 0;
      if (this.order.length === 0) return undefined;
    }
  }

  hasNext(): boolean {
    return this.upcoming() !== undefined || this.canRetry();
  }

  /** The next mirror of this round not known to lack the block. */
  upcoming(): M | undefined {
    return this.order.slice(this.nextInOrder).find((m) => !this.answeredNotFound.has(m));
  }

  /** Another round may start once this one is done. */
  canRetry(): boolean {
    return this.round < this.rounds && this.answeredNotFound.size < this.mirrorCount();
  }

  /** A mirror's attempt failed with `failure` (already classified). */
  failed(mirror: M, failure: Error): void {
    if (failure instanceof BlockNotFoundError) {
      this.answeredNotFound.add(mirror);
      this.lastFailure.delete(mirror);
      return;
    }
    this.lastFailure.set(mirror, failure);
    if (failure instanceof LowSpeedError && this.stallRounds < this.maxStallRounds) {
      this.stallRounds++;
      this.rounds++;
    }
  }
}
