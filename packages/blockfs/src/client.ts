/**
 * The HTTP client side of httpstorged without the mount: index
 * loading, mirror statistics and the fetch/verify/failover sources. For
 * programs that fetch from mirrors but never mount (thfc-mirror's sync and
 * pull-through): the package's main entry also loads the FUSE mount, and with
 * it fuse-native, whose binding needs libfuse2 installed (the mirror's docker
 * image has none).
 */
export * from './index-loader.js';
export * from './mirrors/mirror-stats.js';
export * from './sources/failover.js';
export * from './sources/http-source.js';
export * from './sources/verified.js';
