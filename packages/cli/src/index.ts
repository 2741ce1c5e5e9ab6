export { ignoreClosedOutput } from './closed-output.js';
export { count, seconds, size, wholeSeconds } from './option-parsers.js';
export { oneLine, oneLineParseErrors } from './parse-errors.js';
export { reportError } from './report-error.js';
export { notifySystemdReady } from './systemd-ready.js';
