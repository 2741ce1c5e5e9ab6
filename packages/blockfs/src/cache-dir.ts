/**
 * The original's cache directory; shared by every image and daemon on the
 * machine. In a module of its own so that the command line can show it as a
 * default without loading the mount (and fuse-native, undici…).
 */
export const DEFAULT_CACHE_DIR = '/var/tmp/blocks';
