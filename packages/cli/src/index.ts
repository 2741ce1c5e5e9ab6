export { oneLine, oneLineParseErrors } from './parse-errors.js';
export { notifySystemdReady } from './systemd-ready.js';
