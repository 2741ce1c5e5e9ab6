/**
 * Why a losing request is aborted: another request for the same block
 * answered first. Not a failure of anybody. An HTTP mirror's window weighs a
 * first request that lost to its hedge as a stalled exchange (it was in the
 * tail); a hedge that lost to the request it hedged says nothing about the
 * link, and weighs nothing.
 */
export class HedgeLost extends Error {
  /** True when the aborted request was the hedge, not the request it hedged. */
  readonly wasHedge: boolean;

  constructor(wasHedge: boolean) {
    super('another request for this block answered first');
    this.name = 'HedgeLost';
    this.wasHedge = wasHedge;
  }
}
