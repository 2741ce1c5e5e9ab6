export { syncDir, TEMP_PREFIX, tempPathFor, writeFileAtomic } from './atomic-file.js';
export { DirStore, probeStoredBlockSync } from './dir-store.js';
export { drainedOrClosed } from './drained-or-closed.js';
export type { GetBoundedOptions, HttpResponse } from './http-get.js';
export {
  consumeBody,
  discardBody,
  getBounded,
  HttpStatusError,
  HttpTimeoutError,
  httpGet,
  ResponseTooLargeError,
  readBody,
  redirectTarget,
} from './http-get.js';
export { looksLikeIndex, readIndexFile } from './index-file.js';
export { writeIndexFiles } from './index-files.js';
export type { HeldIndex, LoadedIndex } from './index-loader.js';
export {
  checkTrust,
  DEFAULT_INDEX_TIMEOUT_MS,
  heldIndex,
  INDEX_ATTEMPTS,
  loadIndex,
  MAX_INDEX_BYTES,
  MAX_INDEX_REDIRECTS,
  parseIndexLocation,
  revalidateIndex,
} from './index-loader.js';
export type { SigningKey } from './key-file.js';
export { readKeyFile, readPublicKey } from './key-file.js';
export type { Logger } from './logger.js';
export { LineLogger, MemoryLogger, SILENT_LOGGER } from './logger.js';
export type { MirrorSnapshot } from './mirrors/mirror-stats.js';
export { DEFAULT_COOL_OFF_MS, MirrorStats } from './mirrors/mirror-stats.js';
export type { MountEntry } from './mount-point.js';
export {
  isMounted,
  lazyUnmount,
  mountDevice,
  mountTable,
  parseMountInfo,
  prepareMountpoint,
  unmountIfIdle,
} from './mount-point.js';
export type { FileOpener } from './open-files.js';
export { DEFAULT_FILE_REVALIDATE_MS, DEFAULT_OPEN_FILES, OpenFiles } from './open-files.js';
export { loadProfile } from './profile-loader.js';
export { ConnectionClosedError, SocketReader } from './socket-reader.js';
export type { BlockDecoder, Decoded } from './sources/block-decoder.js';
export { InlineDecoder } from './sources/block-decoder.js';
export type { FailoverMirror, FailoverOptions } from './sources/failover.js';
export {
  DEFAULT_ATTEMPT_TIMEOUT_MS,
  defaultRounds,
  Failover,
  HEDGE_MIN_MS,
  MAX_STALL_ROUNDS,
  MIN_ATTEMPTS,
} from './sources/failover.js';
export { HedgeLost } from './sources/hedge-lost.js';
export type { HttpResult } from './sources/http-source.js';
export { HttpSource, retryAfterMs } from './sources/http-source.js';
export type { GateWaiter } from './sources/priority-gate.js';
export { PriorityGate } from './sources/priority-gate.js';
export { DEFAULT_MAX_WINDOW } from './sources/request-window.js';
export type { FetchOptions, Priority } from './sources/urgency.js';
export { currentPriority, Urgency } from './sources/urgency.js';
export type { VerifiedBlockSource, VerifiedRemote } from './sources/verified.js';
export { VerifiedSource, verified } from './sources/verified.js';
export { STALLING_CHECK_MS } from './sources/wire-exchange.js';
export { readTrustStore, readTrustStoreFiles, readTrustStoreForEdit, writeTrustStoreFile } from './trust-store-file.js';
export { VersionStore } from './version-store.js';
