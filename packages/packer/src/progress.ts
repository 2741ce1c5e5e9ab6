import { formatBytes, formatRate } from './human-units.js';

export interface ProgressSink {
  update(done: number): void;
  finish(): void;
}

/** No progress output (not a TTY, or --json). */
export const SILENT_PROGRESS: ProgressSink = { update() {}, finish() {} };

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
    const rate = formatRate(this.done, secs);
    let line: string;
    if (this.total) {
      const frac = Math.min(1, this.done / this.total);
      const width = 30;
      const full = Math.round(frac * width);
      const eta = this.done > 0 ? Math.max(0, (secs * (this.total - this.done)) / this.done) : 0;
      line = `${this.label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(this.done)}/${formatBytes(this.total)} ${rate} ETA ${eta.toFixed(0)}s`;
    } else {
      line = `${this.label} ${formatBytes(this.done)} ${rate}`;
    }
    const cols = this.out.columns ?? 100;
    this.out.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 2))}`);
  }

  finish(): void {
    this.draw(Date.now());
    this.out.write('\n');
  }
}
