export { oneLine, oneLineParseErrors } from './parse-errors.js';
