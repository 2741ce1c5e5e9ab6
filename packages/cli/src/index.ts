export { ignoreClosedOutput } from './closed-output.js';
export { oneLine, oneLineParseErrors } from './parse-errors.js';
export { notifySystemdReady } from './systemd-ready.js';
