import { ProgressBar, ProgressLines, type ProgressSink, progressInterval, SILENT_PROGRESS } from './progress.js';

/**
 * What a command may touch of the outside world. The CLI builds it from
 * `process`; tests build it from buffers. Commands never read `process.*`.
 */
export interface CommandIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Aborted on SIGINT/SIGTERM: long work stops, cleans up, and throws InterruptedError. */
  readonly signal: AbortSignal;
  /**
   * Progress on stderr: true, a bar redrawn in place (a TTY); 'lines', a line every few seconds (not a TTY:
   * a log, CI); false, none (--json).
   */
  readonly progress: boolean | 'lines';
  /** Environment, for SOURCE_DATE_EPOCH. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function progressFor(io: CommandIo, label: string, total: number | undefined): ProgressSink {
  if (io.progress === 'lines') return new ProgressLines(io.stderr, label, total, progressInterval(io.env));
  return io.progress ? new ProgressBar(io.stderr, label, total) : SILENT_PROGRESS;
}
