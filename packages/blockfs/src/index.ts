export type { ImageStatus, Mounted, MountOptions, MountStatus } from './mount.js';
export { mountImages } from './mount.js';
export { serveImages } from './nbd-serve.js';
