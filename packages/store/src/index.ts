// @thfc/store's public API: the Node I/O that packer, blockfs and the mirror share.
export { syncDir, TEMP_PREFIX, tempPathFor, writeFileAtomic } from './atomic-file.js';
export { DirStore, probeStoredBlockSync } from './dir-store.js';
// One bounded GET: a byte limit, a timeout, the caller's signal; the loaders, thfc-mirror's upstream and thfc-vm use it.
export {
  consumeBody,
  discardBody,
  type GetBoundedOptions,
  getBounded,
  type HttpGetOptions,
  type HttpResponse,
  HttpStatusError,
  HttpTimeoutError,
  httpGet,
  ResponseTooLargeError,
  readBody,
  redirectTarget,
} from './http-get.js';
// The remote side: index loading, mirror statistics and selection, the fetch/verify/failover sources.
export * from './index-cache.js';
export { looksLikeIndex, readIndexFile } from './index-file.js';
export { writeIndexFiles } from './index-files.js';
export * from './index-loader.js';
// Key and trust-store files (the publisher writes them; httpstorged and the CLIs read them).
export { readKeyFile, readPublicKey, type SigningKey } from './key-file.js';
export { LineLogger, type Logger, MemoryLogger, SILENT_LOGGER } from './logger.js';
export * from './mirrors/mirror-stats.js';
export * from './mirrors/select-mirrors.js';
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
// One table of open read-only descriptors (httpstorged's disk cache, thfc-mirror's store).
export {
  DEFAULT_FILE_REVALIDATE_MS,
  DEFAULT_OPEN_FILES,
  type FileOpener,
  type OpenedFile,
  OpenFiles,
  type OpenFilesOptions,
} from './open-files.js';
export * from './pinned-index.js';
export * from './profile-loader.js';
// An exact-length reader over a socket (the NBD server's sessions, and thfc-pack's qemu-nbd client).
export { ConnectionClosedError, SocketReader } from './socket-reader.js';
export * from './sources/block-decoder.js';
export * from './sources/failover.js';
export * from './sources/hedge-lost.js';
export * from './sources/http-source.js';
export * from './sources/low-speed-error.js';
// Demand/background queues over a bounded number of slots: an HTTP mirror's window and the decode threads.
export {
  type GatePolicy,
  type GateSnapshot,
  type GateWaiter,
  PriorityGate,
} from './sources/priority-gate.js';
export * from './sources/request-window.js';
export * from './sources/urgency.js';
export * from './sources/verified.js';
export { readTrustStore, readTrustStoreFiles, readTrustStoreForEdit, writeTrustStoreFile } from './trust-store-file.js';
// A store's retained index versions (versions/NAME/), which thfc-pack publishes and a mirror copies.
export { VersionStore } from './version-store.js';
