/**
 * Log lines, one per event. Faults are always logged (one line each); fetch
 * lines only with --verbose. The daemon's logger writes to stderr or its log
 * file with a timestamp; tests collect lines in an array.
 */
export interface Logger {
  /** Something went wrong and was handled or reported (a mirror failed, a cache entry was corrupt, a read got EIO). */
  fault(message: string): void;
  /** Lifecycle: mounted, unmounted, index loaded. */
  info(message: string): void;
  /** Per-fetch detail, only with --verbose. */
  verbose(message: string): void;
}

export const SILENT_LOGGER: Logger = { fault() {}, info() {}, verbose() {} };

export class LineLogger implements Logger {
  constructor(
    private readonly write: (line: string) => void,
    private readonly verboseOn = false,
    private readonly now: () => Date = () => new Date(),
  ) {}
  private line(level: string, message: string): void {
    this.write(`${this.now().toISOString()} ${level} ${message}\n`);
  }
  fault(message: string): void {
    this.line('FAULT', message);
  }
  info(message: string): void {
    this.line('INFO', message);
  }
  verbose(message: string): void {
    if (this.verboseOn) this.line('FETCH', message);
  }
}

/** Collects lines for tests. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  fault(message: string): void {
    this.lines.push(`FAULT ${message}`);
  }
  info(message: string): void {
    this.lines.push(`INFO ${message}`);
  }
  verbose(message: string): void {
    this.lines.push(`FETCH ${message}`);
  }
}
