// @thfc/store's public API: the Node I/O that packer, blockfs and the mirror share.
export { syncDir, TEMP_PREFIX, tempPathFor, writeFileAtomic } from './atomic-file.js';
export { DirStore, probeStoredBlockSync } from './dir-store.js';
export { looksLikeIndex, readIndexFile } from './index-file.js';
export { writeIndexFiles } from './index-files.js';
export { LineLogger, type Logger, MemoryLogger, SILENT_LOGGER } from './logger.js';
export {
  isMounted,
  lazyUnmount,
  type MountEntry,
  mountDevice,
  mountTable,
  parseMountInfo,
  prepareMountpoint,
  unmountIfIdle,
} from './mount-point.js';
