export { parseNetworks, preferredRegions } from './dns/networks.js';
export { answerQuery } from './dns/zone.js';
export { runProxy } from './proxy.js';
export { REDIS_KEY_PREFIX, RedisRegistry } from './registry/redis-registry.js';
export type { RunningMirror, ServeOptions } from './serve.js';
export { runServe, startMirror } from './serve.js';
export type { SyncOptions, SyncReport } from './sync.js';
export { runSync } from './sync.js';
