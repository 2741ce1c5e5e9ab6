import type { MirrorRecord } from '../registry/registry.js';

/**
 * DNS-Balance's badness: 0 is the best server, 10000 a downed one. Here:
 *
 *   utilisation = min(load / capacity, 1)
 *   badness     = round(4999 × utilisation) + (health = degraded ? 5000 : 0)
 *
 * so an idle healthy mirror is 0, a saturated healthy one 4999, and every
 * degraded mirror (its own store checks fail, it may serve errors) ranks
 * after every healthy one, however loaded: 5000–9999. 10000 (down) is never
 * computed from a record: a mirror whose record expired or was removed is
 * down and left out of every answer.
 */
export const DOWN_BADNESS = 10_000;
const LOAD_SPAN = 4_999;
const DEGRADED_PENALTY = 5_000;

export function badness(record: MirrorRecord): number {
  const utilisation = record.capacity > 0 ? Math.min(Math.max(record.load / record.capacity, 0), 1) : 1;
  return Math.round(LOAD_SPAN * utilisation) + (record.health === 'degraded' ? DEGRADED_PENALTY : 0);
}
