/**
 * Why a losing hedged request is aborted: another request for the same block
 * answered first. Not a failure of anybody; an HTTP mirror's window weighs
 * the loser as a stalled exchange (it was in the tail), not as congestion.
 */
export class HedgeLost extends Error {
  constructor() {
    super('another request for this block answered first');
    this.name = 'HedgeLost';
  }
}
