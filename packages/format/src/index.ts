export type { HashAlgorithm } from './block-id.js';
export { blockId, DEFAULT_HASH, hashOfId, isBlockId, isZeroBlock, parseHashAlgorithm } from './block-id.js';
export { assertImageName, blockPath, indexFileName, isImageName } from './block-path.js';
export type { BlockRef, BlockSink, BlockSource, SourceOptions } from './block-source.js';
export type { BootProfile } from './boot-profile.js';
export { checkProfile, decodeProfile, encodeProfile, MAX_PROFILE_BYTES } from './boot-profile.js';
export type { Catalog, CatalogBoot, CatalogEntry } from './catalog.js';
export { CATALOG_FILE, CATALOG_NAME_PATTERN, decodeCatalog, encodeCatalog } from './catalog.js';
export type { Codec, CodecSpec } from './codecs.js';
export { classifyStored, DEFAULT_CODEC, encodeBlock, encodeBound, formatCodecSpec, parseCodecSpec } from './codecs.js';
export {
  BlockCorruptError,
  BlockNotFoundError,
  BusyError,
  CatalogFormatError,
  CheckFailedError,
  EXIT,
  exitCodeOf,
  fsError,
  IncompleteError,
  IndexFormatError,
  InputError,
  InterruptedError,
  InvalidArgumentError,
  LineFormatError,
  MirrorUnavailableError,
  PinRefusedError,
  SignatureError,
  StoreFullError,
  StoreIoError,
  ThfcError,
  TrustStoreFormatError,
  UsageError,
} from './errors.js';
export { assertBlockSize, DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, parseSize } from './geometry.js';
export type { DecodedIndex, IndexEntry, IndexHeader } from './image-index.js';
export {
  decodeIndex,
  encodeIndex,
  FORMAT_VERSION,
  ImageIndex,
  isIndexDigest,
  signIndex,
  verifyIndexSignatures,
} from './image-index.js';
export { IndexBuilder } from './index-builder.js';
export { peekIndexIdentity } from './index-identity.js';
export { compressIndex, decodeIndexBody, INDEX_ACCEPT_ENCODING, INDEX_ZST_SUFFIX } from './index-wire.js';
export { isPositiveWholeNumber, readJsonDocument } from './json-document.js';
export {
  BASE_ALLOCATION,
  BASE_ALLOCATION_ID,
  NBD_CMD,
  NBD_CMD_FLAG,
  NBD_E,
  NBD_FLAG,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO,
  NBD_INIT_MAGIC,
  NBD_OPT,
  NBD_OPTS_MAGIC,
  NBD_REP,
  NBD_REP_MAGIC,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  NBD_STRUCTURED_REPLY_MAGIC,
} from './nbd-protocol.js';
export { generateSigningKey, keyIdOf, parsePrivateKey, parsePublicKey, rawPublicKey } from './signature.js';
export { appendSignature, verifyInlineSignatures } from './signature-line.js';
export { decideTrust, requireTrusted } from './trust-policy.js';
export type { KeyGrant, TrustStore, TrustStoreFile } from './trust-store.js';
export {
  combineTrustStores,
  decodeTrustStore,
  emptyTrustStore,
  encodeTrustStore,
  grantKey,
  mergeTrustStores,
  parseExpiry,
  revokeKey,
  revokes,
  TRUST_STORE_MAGIC,
  trustStoreOfKeys,
} from './trust-store.js';
export { decodeVerified } from './verify-block.js';
export type { ImageVersion, VersionList } from './version-list.js';
export {
  decodeVersionList,
  encodeVersionList,
  findVersion,
  MAX_VERSION_LIST_BYTES,
  sortVersions,
  VERSION_LIST_FILE,
  VERSIONS_DIR,
  versionFileName,
  versionListPath,
} from './version-list.js';
