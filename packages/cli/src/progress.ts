import { formatBytes, formatDuration, formatRate } from './human-units.js';

export interface ProgressSink {
  update(done: number): void;
  finish(): void;
}

/** No progress output (--json). */
export const SILENT_PROGRESS: ProgressSink = { update() {}, finish() {} };

/**
 * Seconds between progress lines where stderr is not a TTY (a log, CI): a
 * line every few seconds shows the work is alive without flooding the log.
 * `THFC_PROGRESS_SECONDS` sets it (progressInterval).
 */
export const DEFAULT_PROGRESS_LINE_MS = 5_000;

/** The interval between progress lines: THFC_PROGRESS_SECONDS from `env`, else the default. */
export function progressInterval(env: Readonly<Record<string, string | undefined>>): number {
  const v = Number(env.THFC_PROGRESS_SECONDS);
  return env.THFC_PROGRESS_SECONDS !== undefined && Number.isFinite(v) && v > 0 ? v * 1000 : DEFAULT_PROGRESS_LINE_MS;
}

/**
 * How far a job has got: percentage, amount, rate and an ETA with its unit
 * when the total is known; amount and rate otherwise. `unit` formats an
 * amount (bytes by default; fill counts blocks).
 */
export function describeProgress(
  done: number,
  total: number | undefined,
  seconds: number,
  unit: { amount: (n: number) => string; rate: (n: number, s: number) => string } = BYTES,
): string {
  const rate = unit.rate(done, seconds);
  if (!total) return `${unit.amount(done)} ${rate}`;
  const pct = Math.min(100, (done / total) * 100);
  const eta = done > 0 ? formatDuration(Math.max(0, (seconds * (total - done)) / done)) : '-';
  return `${pct.toFixed(0)}% ${unit.amount(done)}/${unit.amount(total)} ${rate} ETA ${eta}`;
}

const BYTES = { amount: formatBytes, rate: formatRate };

/**
 * A one-line progress bar redrawn in place on a TTY, at most 10 times a
 * second. `total` may be unknown (a pipe on stdin): then it shows bytes and rate.
 */
export class ProgressBar implements ProgressSink {
  private last = 0;
  private readonly start = Date.now();
  private done = 0;

  constructor(
    private readonly out: NodeJS.WritableStream & { columns?: number },
    private readonly label: string,
    private readonly total: number | undefined,
  ) {}

  update(done: number): void {
    this.done = done;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.draw(now);
  }

  private draw(now: number): void {
    const secs = (now - this.start) / 1000;
    let bar = '';
    if (this.total) {
      const width = 30;
      const full = Math.round(Math.min(1, this.done / this.total) * width);
      bar = ` [${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
    }
    const line = `${this.label}${bar} ${describeProgress(this.done, this.total, secs)}`;
    const cols = this.out.columns ?? 100;
    this.out.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 2))}`);
  }

  finish(): void {
    this.draw(Date.now());
    this.out.write('\n');
  }
}

/**
 * Progress where stderr is not a TTY: one whole line every `intervalMs`
 * while the work goes on, and a last one at the end, so a log or a CI job
 * shows it is alive. Work done within the first interval prints nothing.
 */
export class ProgressLines implements ProgressSink {
  private readonly start: number;
  private last: number;
  private done = 0;
  private printed = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly intervalMs: number = DEFAULT_PROGRESS_LINE_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.start = this.last = now();
  }

  update(done: number): void {
    this.done = done;
    const now = this.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    this.printed = true;
    this.out.write(`${this.label}: ${describeProgress(done, this.total, (now - this.start) / 1000)}\n`);
  }

  finish(): void {
    if (!this.printed) return;
    const secs = (this.now() - this.start) / 1000;
    this.out.write(
      `${this.label}: done, ${formatBytes(this.done)} in ${formatDuration(secs)} (${formatRate(this.done, secs)})\n`,
    );
  }
}
