export * from './cli-shell.js';
export { ignoreClosedOutput } from './closed-output.js';
export * from './command-io.js';
export * from './human-units.js';
export { count, seconds, size, wholeSeconds } from './option-parsers.js';
export { oneLine, oneLineParseErrors } from './parse-errors.js';
export {
  DEFAULT_PROGRESS_LINE_MS,
  describeProgress,
  type ProgressSink,
  progressInterval,
} from './progress.js';
export { reportError } from './report-error.js';
export { notifySystemdReady } from './systemd-ready.js';
