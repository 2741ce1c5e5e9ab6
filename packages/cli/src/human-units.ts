/** Human-readable sizes and rates for summaries and progress lines. Binary units, as `ls -h` prints. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

/** Decimal MB/s, the unit benchmarks and dd print. */
export function formatRate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${(bytes / 1e6 / seconds).toFixed(1)} MB/s` : '-';
}

/** A duration for people, always with its unit: `42s`, `3m05s`, `2h07m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
