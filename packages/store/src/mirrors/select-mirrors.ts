/** What the ranking reads from a mirror's record; MirrorStats satisfies it. */
export interface RankingStats {
  readonly successes: number;
  readonly latencyMs: number | undefined;
  readonly failureRate: number;
  readonly demotedUntil: number;
}

/**
 * A mirror's latency is trusted after 3 successes: one sample is mostly
 * connection setup (TCP, maybe TLS), and two can both be outliers. Until then
 * the starting order (command line, DNS) is the better guess.
 */
export const DEFAULT_MIN_SAMPLES = 3;

/**
 * What a failed attempt costs a reader, in ms, for the score below: the
 * failover's default per-attempt timeout, because the failures that hurt are
 * the ones that hang. It makes failures dominate: a mirror failing 1 request
 * in 100 scores 100 ms worse than an identical one that never fails, more than
 * any loopback or LAN latency difference.
 */
export const DEFAULT_FAILURE_COST_MS = 10_000;

export interface SelectMirrorsOptions {
  readonly minSamples?: number;
  readonly failureCostMs?: number;
}

/**
 * The expected cost in ms of asking this mirror first (lower is better, as
 * netselect's score): its typical latency, plus its failure rate times what a
 * failure costs.
 */
export function mirrorScore(stats: RankingStats, failureCostMs = DEFAULT_FAILURE_COST_MS): number {
  return (stats.latencyMs ?? 0) + stats.failureRate * failureCostMs;
}

/**
 * The order to try mirrors in, from their starting order, their records and
 * the time. Pure: it reads nothing else and does not modify its input.
 *
 * 1. Mirrors not in a cool-off come first. Among them, mirrors with fewer
 *    than `minSamples` successes keep their starting positions, and the
 *    mirrors with enough samples are reordered among the remaining positions
 *    by score (ties keep the starting order). So the first mirror on the
 *    command line stays first until some other mirror has proved better.
 * 2. Demoted mirrors come last, the one whose cool-off ends first leading:
 *    they are still tried as a last resort. Once `now` passes a mirror's
 *    `demotedUntil` it is ranked by rule 1 again.
 */
export function selectMirrors<T extends { readonly stats: RankingStats }>(
  mirrors: readonly T[],
  now: number,
  options: SelectMirrorsOptions = {},
): T[] {
  const minSamples = options.minSamples ?? DEFAULT_MIN_SAMPLES;
  const failureCostMs = options.failureCostMs ?? DEFAULT_FAILURE_COST_MS;

  const live = mirrors.filter((m) => m.stats.demotedUntil <= now);
  const demoted = mirrors.filter((m) => m.stats.demotedUntil > now);

  const sampledSlots: number[] = [];
  live.forEach((m, slot) => {
    if (m.stats.successes >= minSamples) sampledSlots.push(slot);
  });
  // Array.prototype.sort is stable, so equal scores keep the starting order.
  const sampledByScore = sampledSlots
    .map((slot) => live[slot] as T)
    .sort((a, b) => mirrorScore(a.stats, failureCostMs) - mirrorScore(b.stats, failureCostMs));
  const ranked = [...live];
  sampledSlots.forEach((slot, i) => {
    ranked[slot] = sampledByScore[i] as T;
  });

  demoted.sort((a, b) => a.stats.demotedUntil - b.stats.demotedUntil);
  return [...ranked, ...demoted];
}
