import { ProgressBar, type ProgressSink, SILENT_PROGRESS } from './progress.js';

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
  /** Draw progress bars on stderr (a TTY, and no --json). */
  readonly progress: boolean;
  /** Environment, for SOURCE_DATE_EPOCH. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function progressFor(io: CommandIo, label: string, total: number | undefined): ProgressSink {
  return io.progress ? new ProgressBar(io.stderr, label, total) : SILENT_PROGRESS;
}
